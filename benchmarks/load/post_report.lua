-- wrk: POST the body in BODY_FILE to /api/v1/reports, each request with an Idempotency-Key of its
-- own (so that each is a new report, as retries of one would not be), and a bearer key when
-- REPORT_KEY is set.
local counter = 0
local next_thread = 0
local body, content_type, authorization, prefix

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
  body = file:read("*a")
  file:close()
  content_type = os.getenv("CONTENT_TYPE") or "application/json"
  local key = os.getenv("REPORT_KEY")
  authorization = key and ("Bearer " .. key) or nil
  prefix = (os.getenv("RUN_ID") or "run") .. "-" .. tostring(thread_id) .. "-"
end

function request()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = content_type,
    ["Idempotency-Key"] = prefix .. counter,
  }
  if authorization then
    headers["Authorization"] = authorization
  end
  return wrk.format("POST", "/api/v1/reports", headers, body)
end
