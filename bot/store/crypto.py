"""Encryption of secrets kept in Redis (Slack installations: bot, user and refresh tokens) with
`cryptography`'s Fernet under keys from AISTATUS_ENCRYPTION_KEY; a comma-separated list rotates
(the first encrypts, every one decrypts). Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import ConfigError

PREFIX = "fernet:"  # marks an encrypted value (anything else is a plaintext legacy value)
KEY_SETTING = "AISTATUS_ENCRYPTION_KEY"
HOW_TO_GENERATE = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class TokenCipher:
    """Encrypts with the first key; decrypts with any of them (key rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Raises: ConfigError naming AISTATUS_ENCRYPTION_KEY when a key is not a Fernet key."""
        try:
            self._fernets = [Fernet(k.strip().encode()) for k in keys if k.strip()]
        except (ValueError, TypeError):
            raise ConfigError(
                f"{KEY_SETTING} is not a Fernet key (32 url-safe base64 bytes); make one with "
                f"{HOW_TO_GENERATE}",
                key=KEY_SETTING,
            ) from None
        if not self._fernets:
            raise ConfigError(f"{KEY_SETTING} is empty; make a key with {HOW_TO_GENERATE}")
        self._all = MultiFernet(self._fernets)

    @classmethod
    def from_setting(cls, value: str) -> TokenCipher:
        """From `key1,key2,...` as AISTATUS_ENCRYPTION_KEY holds it. Raises: ConfigError."""
        return cls(value.split(","))

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernets[0].encrypt(plaintext.encode()).decode()

    def read(self, stored: str) -> tuple[str, str | None]:
        """(plaintext, rewrite): `rewrite` is the value to store back (encrypted under the current
        key) when `stored` was plaintext or under an older key, else None.
        Raises: ValueError when no key decrypts it."""
        plaintext, current = self._decrypt(stored)
        return plaintext, None if current else self.encrypt(plaintext)

    def _decrypt(self, stored: str) -> tuple[str, bool]:
        """(plaintext, current): `current` is False for a legacy plaintext value or one under an
        older key, which the caller should write back encrypted with the current key.
        Raises: ValueError when no key decrypts it."""
        if not stored.startswith(PREFIX):
            return stored, False
        token = stored[len(PREFIX) :].encode()
        try:
            return self._fernets[0].decrypt(token).decode(), True
        except InvalidToken:
            pass
        try:
            return self._all.decrypt(token).decode(), False
        except InvalidToken:
            raise ValueError("no configured key decrypts this value") from None
