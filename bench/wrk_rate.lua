-- wrk at a steady rate: each connection waits 70 ms before its next request (4 connections: about 50 req/s).
function delay()
  return 70
end
