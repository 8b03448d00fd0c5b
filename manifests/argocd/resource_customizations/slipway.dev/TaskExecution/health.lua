-- Slipway TaskExecution: Progressing until the task is Finished (with why it waits, from its
-- Succeeded condition); then Healthy when its result is pass or warning and Degraded when it
-- is fail, with the verdict and the execution's message.
local hs = {}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Slipway operator to pick the task up"
  return hs
end
if status.phase ~= "Finished" then
  hs.status = "Progressing"
  hs.message = status.phase
  if status.attempts ~= nil and status.attempts > 1 then
    hs.message = hs.message .. " (attempt " .. status.attempts .. ")"
  end
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      if condition.type == "Succeeded" and condition.status == "Unknown" then
        if condition.reason ~= nil and condition.reason ~= status.phase then
          hs.message = hs.message .. ": " .. condition.reason
        end
        if condition.message ~= nil and condition.message ~= "" then
          hs.message = hs.message .. ": " .. condition.message
        end
      end
    end
  end
  return hs
end
local result = status.result or "no result"
local message = result
if result ~= "pass" and result ~= "warning" and status.reason ~= nil then
  message = message .. " (" .. status.reason .. ")"
end
if status.message ~= nil and status.message ~= "" then
  message = message .. ": " .. status.message
end
hs.message = message
if result == "pass" or result == "warning" then
  hs.status = "Healthy"
else
  hs.status = "Degraded"
end
return hs
