-- 0006_route_version: a counter that changes whenever what routing reads
-- changes, so the writer can keep each application's endpoints in memory
-- between ingest batches and reload them only after a change. Loading and
-- decoding them for every batch cost a query per application per batch,
-- most of a small batch's work. The triggers catch every writer: this
-- process's API and dispatcher, another process on the file.
-- Only the columns routing reads bump it on UPDATE, so the frequent
-- failing_since updates of a failing endpoint cost nothing more.
CREATE TABLE route_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v  INTEGER NOT NULL
) STRICT;
INSERT INTO route_version (id, v) VALUES (1, 0);

CREATE TRIGGER route_version_endpoint_insert AFTER INSERT ON endpoint
BEGIN
    UPDATE route_version SET v = v + 1 WHERE id = 1;
END;
CREATE TRIGGER route_version_endpoint_delete AFTER DELETE ON endpoint
BEGIN
    UPDATE route_version SET v = v + 1 WHERE id = 1;
END;
CREATE TRIGGER route_version_endpoint_update
AFTER UPDATE OF id, app_id, disabled, filter_types, channels, ordering ON endpoint
BEGIN
    UPDATE route_version SET v = v + 1 WHERE id = 1;
END;
CREATE TRIGGER route_version_application_insert AFTER INSERT ON application
BEGIN
    UPDATE route_version SET v = v + 1 WHERE id = 1;
END;
CREATE TRIGGER route_version_application_delete AFTER DELETE ON application
BEGIN
    UPDATE route_version SET v = v + 1 WHERE id = 1;
END;
