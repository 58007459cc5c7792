"""Redemption at checkout never spends a lot past its validity: between midnight, when lots
expire, and the nightly expiry (00:05) that takes them off the balance, the function consumes
only unexpired lots and, when those do not cover the amount, refuses (SQLSTATE PB001) with the
amount that can be spent. Replaces migration 0009's function; the fast path is unchanged.
"""

import importlib

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_bonus_redeem(
    p_customer bigint, p_amount numeric, p_key varchar, p_purchase bigint, p_now timestamptz,
    p_user integer, p_channel varchar, p_reason text)
RETURNS TABLE (debit bigint, balance numeric, pending numeric, debt numeric)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_debit bigint;
    v_balance numeric;
    v_pending numeric;
    v_debt numeric;
    v_consumed numeric;
    v_expired numeric;
BEGIN
    INSERT INTO loyalty_bonusmovement (customer_id, kind, amount, idempotency_key, purchase_id,
        campaign_ref, created_at, created_by_id, channel, reason, is_pending, uncovered, status)
    VALUES (p_customer, 'redemption', -p_amount, p_key, p_purchase, '', p_now, p_user,
        p_channel, p_reason, false, 0, '')
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_debit;
    IF v_debit IS NULL THEN
        RETURN;  -- the key was posted before: the caller replays it
    END IF;

    UPDATE loyalty_bonusaccount a
    SET balance = a.balance - p_amount, updated_at = p_now
    WHERE a.customer_id = p_customer AND a.balance >= p_amount
    RETURNING a.balance, a.pending, a.debt INTO v_balance, v_pending, v_debt;
    IF NOT FOUND THEN
        SELECT a.balance INTO v_balance FROM loyalty_bonusaccount a
        WHERE a.customer_id = p_customer;
        RAISE EXCEPTION 'insufficient bonus' USING
            ERRCODE = 'PB001', DETAIL = COALESCE(v_balance, 0)::text;
    END IF;

    WITH lots AS (
        SELECT m.id, m.remaining,
            SUM(m.remaining) OVER (ORDER BY m.expires_at, m.id) AS upto
        FROM loyalty_bonusmovement m
        WHERE m.customer_id = p_customer AND m.remaining > 0 AND NOT m.is_pending
            AND m.expires_at > p_now
    ), take AS (
        SELECT lots.id, LEAST(lots.remaining, p_amount - (lots.upto - lots.remaining)) AS amount
        FROM lots WHERE lots.upto - lots.remaining < p_amount
    ), upd AS (
        UPDATE loyalty_bonusmovement m SET remaining = m.remaining - take.amount
        FROM take WHERE m.id = take.id
        RETURNING take.amount
    ), ins AS (
        INSERT INTO loyalty_bonusconsumption (debit_id, credit_id, amount, created_at)
        SELECT v_debit, take.id, take.amount, p_now FROM take
    )
    SELECT COALESCE(SUM(upd.amount), 0) INTO v_consumed FROM upd;
    IF v_consumed < p_amount THEN
        -- Lots past their validity that the nightly expiry has not taken yet are still in the
        -- balance; they cannot be spent: refused with what can be.
        SELECT COALESCE(SUM(m.remaining), 0) INTO v_expired FROM loyalty_bonusmovement m
        WHERE m.customer_id = p_customer AND m.remaining > 0 AND NOT m.is_pending
            AND m.expires_at <= p_now;
        IF v_expired > 0 THEN
            RAISE EXCEPTION 'insufficient bonus' USING
                ERRCODE = 'PB001', DETAIL = (v_balance + p_amount - v_expired)::text;
        END IF;
    END IF;
    IF v_consumed <> p_amount THEN
        RAISE EXCEPTION 'account %: lots short of the balance by %',
            p_customer, p_amount - v_consumed;
    END IF;

    RETURN QUERY SELECT v_debit, v_balance, v_pending, v_debt;
END
$fn$
"""



def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, None)  # None: no %-formatting


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("loyalty.migrations.0009_redeem_function")
        schema_editor.execute(previous.FUNCTION, None)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0010_movement_account_fk_and_lean_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
