-- wrk script: the body of responses.lua with "stream": true (the Responses event stream).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","stream":true,"instructions":"' .. filler ..
  '","input":"hello there","max_output_tokens":16}'
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
