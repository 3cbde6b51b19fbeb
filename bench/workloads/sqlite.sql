-- SPDX-License-Identifier: MIT
-- sqlite.sql: the sqlite3 shell's job for bench/run.py, on an in-memory
-- database (no disk in the measurement). @rows is set on the command line
-- (.parameter set @rows N). Builds a table of @rows generated rows and an
-- index, then queries, updates and deletes; the output must not depend on
-- the allocator.
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, amount REAL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @rows)
INSERT INTO t SELECT i, printf('name-%08d-%s', i, hex(i * 7919)), i % 97, (i * 37 % 1000) / 10.0,
    substr(hex(randomblob(0)) || printf('%.*c', i % 60, 'x'), 1, 60) FROM n;
CREATE INDEX t_grp ON t(grp, amount);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(amount), min(name), max(name) FROM t;
SELECT grp, count(*), round(avg(amount), 3), length(group_concat(id % 10, '')) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT name FROM t WHERE grp = 42 ORDER BY amount DESC, id LIMIT 5;
UPDATE t SET note = note || name WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(note)) FROM t;
SELECT length(group_concat(name)) FROM (SELECT name FROM t ORDER BY name DESC);
SELECT a.grp, count(*) FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.grp = b.grp + 1 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 3;
