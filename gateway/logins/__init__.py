"""Sessions and seats: logins under the seat limit (one Lua script), the session API, and
the write-back of who was active, for the usage billing needs."""
