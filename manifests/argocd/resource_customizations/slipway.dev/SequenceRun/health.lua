-- Slipway SequenceRun: Progressing until the run is Finished; then Healthy when its result is
-- pass or warning and Degraded when it is fail, with the verdict and the run's message.
local hs = {}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Slipway operator to pick the run up"
  return hs
end
if status.phase ~= "Finished" then
  hs.status = "Progressing"
  hs.message = status.phase
  if status.currentTask ~= nil then
    hs.message = hs.message .. ": task " .. status.currentTask
    if status.tasks ~= nil and status.sequence ~= nil and status.sequence.tasks ~= nil then
      hs.message = hs.message .. " (" .. #status.tasks .. " of " .. #status.sequence.tasks .. ")"
    end
  end
  if obj.spec ~= nil and obj.spec.abort == true then
    hs.message = hs.message .. "; abort requested"
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
