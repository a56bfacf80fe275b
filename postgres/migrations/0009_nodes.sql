-- 0009_nodes: node liveness. Each herald serve registers itself here at
-- start (name = the owner its leases carry) and renews heartbeat_at every
-- few seconds, in the database's clock. A node whose heartbeat is older
-- than --node-timeout is taken over by another: taken_over_at is set and
-- its sending deliveries return to pending in the same transaction, and
-- the node itself, finding its row taken over at its next heartbeat,
-- stops delivering and exits. A node that stops cleanly deletes its row;
-- rows taken over are kept a day for herald nodes to show.
CREATE TABLE node (
    name           text PRIMARY KEY,
    version        text NOT NULL,
    host           text NOT NULL,
    pid            integer NOT NULL,
    started_at     timestamptz NOT NULL,
    heartbeat_at   timestamptz NOT NULL,
    taken_over_at  timestamptz,
    taken_over_by  text
);
-- The takeover's scan: live nodes by heartbeat.
CREATE INDEX node_live ON node (heartbeat_at) WHERE taken_over_at IS NULL;
