--[[
  Part 8 of the prelude: the dead-letter queue's reads (ADR 0026).
]]
-- THE error class of a dead letter, for the DLQ's counts and its filter by class: the job's
-- recorded class (field ec, written by the fail path from errorClass() in errors.ts); for older
-- jobs, the kind a stored message begins with -- an error code (ECONNRESET: x) or a class name
-- ending in Error or Exception (TypeError: x) -- else "Error" (messageKind() in errors.ts: any
-- other prefix is the message's own text, never a label). Bounded: 64 characters.
local function error_class(ec, message)
  if ec and ec ~= '' then return ec end
  local name = string.match(message or '', '^([%a_][%w_.]*):')
  if name and #name <= 64 and (string.find(name, '^%u[%u%d_][%u%d_]+$') or string.find(name, '^%u[%w_.]*Error$')
    or string.find(name, '^%u[%w_.]*Exception$')) then
    return name
  end
  return 'Error'
end
