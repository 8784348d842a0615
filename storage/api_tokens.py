"""Tables the web layer adds: API bearer tokens (stored as SHA-256 hashes, never in clear) and
the complaint reference counter (its autoincrement id makes every `C-YYYY-NNNNNN` unique)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the user's token generation at issue


class ComplaintReference(Base):
    __tablename__ = "complaint_reference"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime]
