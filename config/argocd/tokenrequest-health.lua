-- Argo CD health check for TokenRequests (tokens.token-operator.io).
-- argocd-cm key: resource.customizations.health.tokens.token-operator.io_TokenRequest
-- It reads the conditions the operator writes: Ready, Reconciling, Stalled.
-- Argo CD runs it without the string library, so it only concatenates.

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message"
local function describe(c)
  if c.message == nil or c.message == "" then
    return c.reason or ""
  end
  return (c.reason or "") .. ": " .. c.message
end

hs = {}
local status = obj.status
local generation = obj.metadata.generation or 0

-- A new TokenRequest reads status {observedGeneration: 0} until the operator
-- writes status; a spec change is not acted on until observedGeneration catches up.
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end

local conditions = status.conditions or {}
local ready = condition(conditions, "Ready")
local reconciling = condition(conditions, "Reconciling")
local stalled = condition(conditions, "Stalled")

if isTrue(stalled) then
  -- A failure that needs a person, even while the old token is still valid.
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif isTrue(ready) then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  if isTrue(reconciling) then
    -- A failed refresh is being retried while the token in the Secret is valid.
    hs.message = hs.message .. "; retrying the refresh (" .. (reconciling.reason or "") .. ")"
    if status.nextRetryTime ~= nil then
      hs.message = hs.message .. " at " .. status.nextRetryTime
    end
  end
elseif isTrue(reconciling) then
  -- A first token, or a retry after a transient failure, is on its way.
  hs.status = "Progressing"
  hs.message = describe(reconciling)
elseif ready ~= nil and ready.status == "False" and ready.reason == "Expired" then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  if ready ~= nil then
    hs.message = describe(ready)
  else
    hs.message = "Waiting for the first token"
  end
end
return hs
