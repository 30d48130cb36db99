"""The worker-gateway contract: codecs, key schema, settings."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.settings import GatewaySettings
from shared import keys
from shared.credentials import issue_key, secret_matches, split_token
from shared.entitlement import (
    EntitlementRecord,
    RecordError,
    decode_record,
    encode_record,
)
from shared.settings import Secret, SettingsError
from shared.states import SessionPolicy, Standing

records = st.builds(
    EntitlementRecord,
    tenant_id=st.text(min_size=1, max_size=20),
    account_id=st.text(min_size=1, max_size=20),
    version=st.integers(min_value=1, max_value=2**62),
    standing=st.sampled_from(Standing),
    reason=st.text(max_size=30),
    valid_until=st.none() | st.integers(min_value=0, max_value=2**40),
    seat_limit=st.none() | st.integers(min_value=0, max_value=10**6),
    session_policy=st.sampled_from(SessionPolicy),
    features=st.lists(st.text(max_size=10), max_size=5).map(tuple),
    plan=st.none() | st.text(max_size=10),
)


@given(records)
def test_record_survives_the_codec(record: EntitlementRecord) -> None:
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize("junk", [b"", b"\x00\x01", b"\x81\xa6schema\x02"])
def test_undecodable_records_are_refused(junk: bytes) -> None:
    with pytest.raises(RecordError):
        decode_record(junk)


def test_keys_of_one_account_share_a_cluster_hash_tag() -> None:
    key = keys.account_key("ten_1", "acc_9")
    assert key.startswith("tg:v1:")
    assert key[key.index("{") + 1 : key.index("}")] == "ten_1:acc_9"
    assert keys.user_key("ten_1", "u") != keys.user_key("ten_2", "u")


def test_keys_are_checked_by_hash_and_never_kept_in_clear() -> None:
    issued = issue_key()
    parts = split_token(issued.token)
    assert parts is not None
    key_id, secret = parts
    assert key_id == issued.key_id
    assert secret not in issued.secret_hash
    assert secret_matches(secret, issued.secret_hash)
    assert not secret_matches(secret + "x", issued.secret_hash)
    assert split_token("not-a-key") is None


def test_secrets_never_show_in_repr() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert secret.reveal() == "hunter2"


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="TOLLGATE_GATEWAY_PORT"):
        GatewaySettings.from_env({"TOLLGATE_GATEWAY_PORT": "eighty"})
    settings = GatewaySettings.from_env({"TOLLGATE_GATEWAY_PORT": "9000"})
    assert settings.port == 9000
