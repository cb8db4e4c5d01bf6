-- payments 045 (issue 18 part 8, speed): recon_run_fast's compare without
-- JIT. recon_bill has no statistics (truncated every time), so the
-- planner's estimate of the FULL JOIN is billions of rows and PostgreSQL
-- compiled the plan with LLVM, inlining and optimising: 0.48 s of compile
-- time (auto_explain at 10⁶ lines) for a plan that runs once. Measured at
-- 10⁶ lines (the function alone, staged by psql \copy, rolled back):
-- 0.94–1.01 s with JIT, 0.84 s without. work_mem stays the default: the
-- hash of the staged lines in 32 batches of 4 MB (cache-sized partitions)
-- ran faster than one 98 MB in-memory hash (1.08–1.10 s with JIT off and
-- work_mem 96 MB). Additive: the function's body is unchanged.

ALTER FUNCTION recon_run_fast(uuid, text, date, text, text, bigint, bigint, int, jsonb)
	SET jit = off;
