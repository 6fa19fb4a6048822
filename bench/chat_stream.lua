-- wrk script: POST the same ~1 KB chat completion body with "stream": true (the worker sends 20 events).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","stream":true,"messages":[{"role":"system","content":"' .. filler ..
  '"},{"role":"user","content":"hello there"}],"max_tokens":16}'
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
