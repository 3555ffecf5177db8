-- A trial can be ended early (from the console, or by withdrawing its
-- access): that is a step of its history like a decision or an undo.
ALTER TABLE trial_decisions DROP CONSTRAINT trial_decisions_action_check;
ALTER TABLE trial_decisions ADD CONSTRAINT trial_decisions_action_check
    CHECK (action IN ('approve', 'reject', 'undo', 'end'));
