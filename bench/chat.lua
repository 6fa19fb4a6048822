-- wrk script: POST a ~1 KB chat completion body (not streamed).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","messages":[{"role":"system","content":"' .. filler ..
  '"},{"role":"user","content":"hello there"}],"max_tokens":16}'
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
