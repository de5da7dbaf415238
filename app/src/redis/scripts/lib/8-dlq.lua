--[[
  Part 8 of the prelude: the dead-letter queue's reads (ADR 0026).
]]
-- THE error class of a dead letter, for the DLQ's counts and its filter by class: the job's
-- recorded class (field ec, written by the fail path from errorClass() in errors.ts); for older
-- jobs, the name before a leading "Name:" of the stored message (TypeError: x -> TypeError),
-- else "Error". Bounded like errorClass(): 64 characters.
local function error_class(ec, message)
  if ec and ec ~= '' then return ec end
  local name = string.match(message or '', '^([%a_][%w_.]*):')
  if name and #name <= 64 then return name end
  return 'Error'
end
