-- Tollgate for HAProxy 2.6+: ask the gateway about every request, as nginx's auth_request
-- and Caddy's forward_auth do. Load it with `lua-load` and call it from a frontend:
--   http-request lua.tollgate <gateway URL> <tenant id>
-- It sets txn.tollgate_status (the gateway's answer: 200, 401, 403; 0 when there was
-- none) and txn.tollgate_<field> for each identity header the gateway vouched for.
-- HAProxy's Lua HTTP client takes addresses (or names its default resolvers know).

local IDENTITY = { "tenant", "account", "user", "standing", "plan", "features" }
local FORWARDED = { "cookie", "authorization" }

local function first(headers, name)
  local values = headers and headers[name]
  return values and values[0]
end

core.register_action("tollgate", { "http-req" }, function(txn, gateway, tenant)
  local incoming = txn.http:req_get_headers()
  local headers = {
    ["x-forwarded-method"] = { txn.sf:method() },
    ["x-forwarded-uri"] = { txn.sf:pathq() },
  }
  for _, name in ipairs(FORWARDED) do
    local value = first(incoming, name)
    if value then
      headers[name] = { value }
    end
  end
  local response = core.httpclient():get({
    url = gateway .. "/v1/auth?tenant=" .. tenant,
    headers = headers,
    timeout = 2000,
  })
  txn:set_var("txn.tollgate_status", response and response.status or 0)
  for _, field in ipairs(IDENTITY) do
    local value = response and first(response.headers, "x-tollgate-" .. field)
    if value then
      txn:set_var("txn.tollgate_" .. field, value)
    end
  end
end, 2)
