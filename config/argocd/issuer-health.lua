-- Argo CD health check for TokenIssuers and ClusterTokenIssuers (tokens.token-operator.io).
-- argocd-cm keys: resource.customizations.health.tokens.token-operator.io_TokenIssuer
--             and resource.customizations.health.tokens.token-operator.io_ClusterTokenIssuer
-- The operator checks an issuer's configuration and credential without asking
-- for a token and writes Ready (and Stalled, its mirror for kstatus).
-- Argo CD runs it without the string library, so it only concatenates.

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
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

-- A new issuer reads status {observedGeneration: 0} until the operator checks
-- it; a spec change is not checked until observedGeneration catches up.
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check generation " .. generation
  return hs
end

local ready = condition(status.conditions or {}, "Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the first check"
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  if status.tokenRequests ~= nil and status.tokenRequests > 0 then
    hs.message = hs.message .. " (" .. status.tokenRequests .. " TokenRequests)"
  end
elseif ready.reason == "CredentialNotFound" then
  -- The credential Secret may come in a later wave of the same sync; the
  -- operator checks again when it appears.
  hs.status = "Progressing"
  hs.message = describe(ready)
else
  -- A credential or spec that cannot be used waits for a person.
  hs.status = "Degraded"
  hs.message = describe(ready)
end
return hs
