-- payments 045 (issue 18 part 8, speed): recon_run_fast's compare without
-- JIT and with its hash in memory. recon_bill has no statistics (truncated
-- every time), so the planner's estimate of the FULL JOIN is billions of
-- rows: PostgreSQL compiled the plan with LLVM, inlining and optimising
-- (0.48 s of the 1.9 s at 10⁶ lines, more than the seq scan it sped up),
-- and the hash of 10⁶ staged lines ran in 32 batches of the default 4 MB
-- work_mem (140 MB written to and read back from temporary files).
-- Reconciliations run one at a time (the TRUNCATE of recon_bill locks), so
-- one backend at a time holds this hash (~100 MB at 10⁶ lines). Additive:
-- the function's body is unchanged.

ALTER FUNCTION recon_run_fast(uuid, text, date, text, text, bigint, bigint, int, jsonb)
	SET jit = off;
ALTER FUNCTION recon_run_fast(uuid, text, date, text, text, bigint, bigint, int, jsonb)
	SET work_mem = '96MB';
