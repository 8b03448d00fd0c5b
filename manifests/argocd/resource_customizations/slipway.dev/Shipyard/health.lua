-- Slipway Shipyard: by its Ready condition, which the operator sets after checking what the
-- API server's schema could not (links and selectors name stages and sequences that exist).
-- Ready=True: Healthy; Ready=False: Degraded with the reason; no verdict yet on the current
-- generation: Progressing.
local hs = {}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end
local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if status ~= nil and status.conditions ~= nil then
  local current = generation == nil or status.observedGeneration == nil
    or status.observedGeneration >= generation
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" and current then
      if condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message or "Ready"
        return hs
      end
      if condition.status == "False" then
        hs.status = "Degraded"
        hs.message = (condition.reason or "NotReady") .. ": " .. (condition.message or "")
        return hs
      end
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the Slipway operator to check the Shipyard"
return hs
