"""The gateway hashes a presented secret once per stored entry, never trusting a stale match."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.decisions.verified import VerifiedSecrets
from shared.credentials import hash_secret


@dataclass(frozen=True)
class Entry:
    secret_hash: str


def test_a_wrong_secret_never_matches() -> None:
    verified = VerifiedSecrets()
    entry = Entry(hash_secret("right"))
    assert verified.matches("right", entry)
    assert not verified.matches("wrong", entry)
    assert not verified.matches("", entry)


def test_a_secret_verified_against_one_entry_is_checked_again_against_its_replacement() -> None:
    verified = VerifiedSecrets()
    old = Entry(hash_secret("s3cret"))
    assert verified.matches("s3cret", old)
    rotated = Entry(hash_secret("new-secret"))  # the key was re-issued: a new entry object
    assert not verified.matches("s3cret", rotated)
    same_hash_new_object = Entry(hash_secret("s3cret"))  # e.g. re-read after the TTL
    assert verified.matches("s3cret", same_hash_new_object)


def test_the_memo_is_bounded() -> None:
    verified = VerifiedSecrets(max_size=10)
    for n in range(25):
        assert verified.matches(f"secret-{n}", Entry(hash_secret(f"secret-{n}")))
        assert len(verified) <= 10
