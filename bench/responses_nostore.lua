-- wrk script: the body of responses.lua with "store": false (nothing is written to the database).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","store":false,"instructions":"' .. filler ..
  '","input":"hello there","max_output_tokens":16}'
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
