-- wrk script: POST a ~1 KB chat completion body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local filler = string.rep("lorem ipsum dolor sit amet ", 32)
wrk.body = '{"model":"mock-model","messages":[{"role":"system","content":"' .. filler ..
  '"},{"role":"user","content":"hello there"}],"max_tokens":16}'
