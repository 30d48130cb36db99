"""On a Redis Cluster: logins, seat limits under concurrency, eviction and ended
sessions, as on one Redis."""

from tests.integration.gateway.test_sessions import (
    test_a_disabled_or_removed_user_frees_their_seats_at_once,
    test_evict_oldest_keeps_the_newest_sessions,
    test_fifty_simultaneous_logins_get_exactly_ten_seats,
    test_login_gives_a_token_the_proxy_accepts_until_logout,
    test_suspended_account_cannot_log_in_and_its_sessions_stop,
)

__all__ = [
    "test_a_disabled_or_removed_user_frees_their_seats_at_once",
    "test_evict_oldest_keeps_the_newest_sessions",
    "test_fifty_simultaneous_logins_get_exactly_ten_seats",
    "test_login_gives_a_token_the_proxy_accepts_until_logout",
    "test_suspended_account_cannot_log_in_and_its_sessions_stop",
]
