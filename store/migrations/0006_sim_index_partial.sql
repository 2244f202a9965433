-- Only SmartHub subscriptions have a SIM: leave every KooGallery instance out of the SIM
-- index, one index write less for each of the million rows a registry import inserts.
-- Lookups by gIccid and packageCode imply gIccid IS NOT NULL, so they still use it.
DROP INDEX subscriptions_sim;
CREATE UNIQUE INDEX subscriptions_sim ON subscriptions (g_iccid, package_code) WHERE g_iccid IS NOT NULL;
