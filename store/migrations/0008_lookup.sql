-- One lookup for any identifier an operator has (issue #21 item 7): kooflow status finds
-- subscriptions by carrier user id, by carrier order id and, for SmartHub pushes still
-- waiting for their SIM, by gIccid and packageCode, each with an index (a registry of a
-- million rows answers in milliseconds). Instance IDs, order IDs, SIMs and workflow IDs
-- already have theirs (0001, 0004, 0006).
CREATE INDEX subscriptions_carrier_user ON subscriptions (carrier_user_id);
-- Only purchases carry a carrier order id: rows without one stay out of the index, and a
-- lookup must say carrier_order_id <> '' to use it (as for subscriptions_order).
CREATE INDEX subscriptions_carrier_order ON subscriptions (carrier_order_id) WHERE carrier_order_id <> '';
-- The pushes of one SIM in a given status (every package, or one), e.g. those unmatched.
-- The status comes second so that a SIM's pushes in one status are searched by both,
-- not found among every push of that status by smarthub_events_status.
CREATE INDEX smarthub_events_sim ON smarthub_events (g_iccid, status, package_code);
