DELETE FROM trial_decisions WHERE action = 'end';
ALTER TABLE trial_decisions DROP CONSTRAINT trial_decisions_action_check;
ALTER TABLE trial_decisions ADD CONSTRAINT trial_decisions_action_check
    CHECK (action IN ('approve', 'reject', 'undo'));
