-- Batches adapt their size to a time budget (safety.batch_time), so each
-- records which of the plan's selected records it covered: from index
-- first_record, record_count of them. NULL for batches of runs started
-- before this migration, which were all safety.batch_size long.
ALTER TABLE batches ADD COLUMN first_record BIGINT;
ALTER TABLE batches ADD COLUMN record_count BIGINT;
