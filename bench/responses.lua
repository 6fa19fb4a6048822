-- wrk script: POST /v1/responses with the ~1 KB content of chat.lua (instructions = its system message,
-- input = its user message), no tools, stored (the API's default): one model round, not streamed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","instructions":"' .. filler ..
  '","input":"hello there","max_output_tokens":16}'
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
