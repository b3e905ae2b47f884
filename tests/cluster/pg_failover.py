#!/usr/bin/env python3
"""cluster/pg_failover: the local cluster (deploy/cluster/cluster) without omsd.

1. start it (timed);
2. a write through haproxy's PostgreSQL port lands on the Patroni primary, the
   primary names one synchronous standby (SHOW synchronous_standby_names,
   pg_stat_replication.sync_state = 'sync') and the row is on that standby;
3. kill -9 the primary's Patroni and postgres and delete its data directory
   (cluster kill-pg-primary --wipe); the failover time is from the kill until
   a write through haproxy succeeds again; the row written before is there;
4. the dead member comes back (restart-pg-member: re-cloned) and streams;
5. stop (timed); no process of the cluster is left.

usage: pg_failover.py --cluster deploy/cluster/cluster [--keep DIR]
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

PSQL = os.path.join(os.environ.get('OMS_PG_BIN', '/usr/lib/postgresql/15/bin'), 'psql')


def log(msg):
    print(msg, flush=True)


class TestFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailed(msg)


def run(argv, timeout):
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    out = (r.stdout + r.stderr).strip()
    log('$ %s  (%.2f s, exit %d)\n%s' % (' '.join(shlex.quote(a) for a in argv[1:]), took, r.returncode,
                                         '\n'.join('  ' + l for l in out.splitlines())))
    if r.returncode != 0:
        raise TestFailed('%s failed (exit %d)' % (argv[1], r.returncode))
    return out, took


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip('\n').partition('=')
            env[k] = shlex.split(v)[0] if v else ''
    return env


def sql(dsn, query, timeout=6.0):
    """(ok, output) of one psql -c."""
    e = {k: v for k, v in os.environ.items() if not k.startswith('PG')}
    try:
        r = subprocess.run([PSQL, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', dsn, '-c', query],
                           capture_output=True, text=True, timeout=timeout, env=e)
    except subprocess.TimeoutExpired:
        return False, 'timeout'
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def must(dsn, query):
    ok, out = sql(dsn, query)
    check(ok, 'query failed: %s: %s' % (query, out))
    return out


def member_dsn(env, m, db='oms'):
    return 'host=127.0.0.1 port=%s dbname=%s user=postgres password=%s connect_timeout=2' % (
        env['OMS_PG%d_PORT' % m], db, superuser_password(env))


def superuser_password(env):
    dsn = env['OMS_CLUSTER_PG_SUPERUSER_DSN']
    return dict(kv.split('=', 1) for kv in dsn.split())['password']


def rest_primary(env):
    for m in (1, 2, 3):
        try:
            with urllib.request.urlopen('http://%s/primary' % env['OMS_PG%d_REST' % m], timeout=1) as r:
                if r.status == 200:
                    return m
        except OSError:
            pass
    return None


def cluster_procs(mark, d):
    """Live (non-zombie) processes of the cluster, found independently of the
    script and from what any user may read (/proc/PID/stat, cmdline): d on
    the command line (etcd, Patroni, the postmaster, haproxy, omsd), a
    postgres title naming the cluster's scope, Redis' title with its port;
    the mark in the environment where readable; and their descendants. Not
    this test, nor its parents."""
    needle = ('OMS_CLUSTER_MARK=' + mark).encode()
    with open(os.path.join(d, 'pg1', 'patroni.yml')) as f:
        scope = json.load(f)['scope']   # the script writes JSON (valid YAML)
    env = read_env(os.path.join(d, 'cluster.env'))
    titles = [('postgres: %s:' % scope).encode(), ('redis-server %s' % env['OMS_CLUSTER_REDIS']).encode()]
    mine = set()
    p = os.getpid()
    while p > 1 and p not in mine:
        mine.add(p)
        try:
            with open('/proc/%d/stat' % p) as f:
                p = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError):
            break
    found, parent, title = set(), {}, {}
    for e in os.listdir('/proc'):
        if not e.isdigit() or int(e) in mine:
            continue
        pid = int(e)
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            if fields[0] in ('Z', 'X'):
                continue
            parent[pid] = int(fields[1])
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                cmd = f.read()
        except (OSError, ValueError):
            continue
        title[pid] = cmd.replace(b'\0', b' ').decode(errors='replace')[:120]
        if (d + '/').encode() in cmd or any(cmd.startswith(t) for t in titles):
            found.add(pid)
            continue
        try:
            with open('/proc/%d/environ' % pid, 'rb') as f:
                if needle in f.read().split(b'\0'):
                    found.add(pid)
        except OSError:
            pass
    for _ in range(8):
        more = {pid for pid, pp in parent.items() if pp in found and pid not in found}
        if not more:
            break
        found |= more
    return ['%d %s' % (pid, title.get(pid, '')) for pid in sorted(found)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cluster', required=True)
    ap.add_argument('--keep', help='use this directory and keep it')
    a = ap.parse_args()
    tool = os.path.abspath(a.cluster)
    d = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix='oms-cluster-test-')
    ok = False
    mark = None
    try:
        _, t_start = run([tool, 'start', d, '--no-omsd'], 180)
        env = read_env(os.path.join(d, 'cluster.env'))
        with open(os.path.join(d, 'cluster.json')) as f:
            mark = json.load(f)['mark']
        dsn = env['OMS_CLUSTER_PG_DSN']
        su = env['OMS_CLUSTER_PG_SUPERUSER_DSN']

        # 2. A write through haproxy lands on the primary and is synchronous.
        primary = rest_primary(env)
        check(primary, 'no member answers 200 on /primary')
        must(dsn, 'CREATE TABLE IF NOT EXISTS failover_probe (id bigserial PRIMARY KEY, tag text NOT NULL,'
                  ' at timestamptz NOT NULL DEFAULT now())')
        port = must(dsn, "INSERT INTO failover_probe (tag) VALUES ('before-failover');"
                         " SELECT inet_server_port()").splitlines()[-1]
        check(port == env['OMS_PG%d_PORT' % primary],
              'haproxy sent the write to port %s, the primary pg%d is on %s'
              % (port, primary, env['OMS_PG%d_PORT' % primary]))
        check(must(dsn, 'SELECT pg_is_in_recovery()') == 'f', 'haproxy reached a standby')
        check(must(dsn, 'SHOW synchronous_commit') == 'on', 'synchronous_commit is not on')
        ssn = must(su, 'SHOW synchronous_standby_names').strip('"')
        rows = must(su, "SELECT application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication"
                        " ORDER BY 1").splitlines()
        log('primary pg%d (port %s); synchronous_standby_names = %s; pg_stat_replication: %s'
            % (primary, port, ssn, rows))
        sync = [r.split()[0] for r in rows if r.endswith(' streaming sync')]
        check(len(sync) == 1 and sync[0] == ssn, 'expected exactly one sync standby named %r, got %s' % (ssn, rows))
        check(len(rows) == 2, 'expected 2 standbys streaming, got %s' % rows)
        sync_m = int(sync[0][2:])
        # synchronous_commit = on: flushed on the standby at COMMIT; applied soon after.
        deadline = time.monotonic() + 10
        while True:
            okq, n = sql(member_dsn(env, sync_m), "SELECT count(*) FROM failover_probe WHERE tag = 'before-failover'")
            if okq and n == '1':
                break
            check(time.monotonic() < deadline, 'the row is not on the sync standby pg%d: %s' % (sync_m, n))
            time.sleep(0.1)
        log('the row is on the synchronous standby pg%d' % sync_m)

        # 3. Kill the primary machine (kill -9, data directory deleted).
        t_kill = time.monotonic()
        run([tool, 'kill-pg-primary', d, '--wipe'], 30)
        check(not os.path.exists(env['OMS_PG%d_DATA' % primary]), 'data directory still there')
        attempts = 0
        while True:
            attempts += 1
            okw, out = sql(dsn, "INSERT INTO failover_probe (tag) VALUES ('after-failover');"
                                " SELECT inet_server_port()", timeout=5)
            if okw:
                break
            check(time.monotonic() - t_kill < 120, 'no write through haproxy 120 s after the kill: %s' % out)
            time.sleep(0.1)
        t_ok = time.time()
        with open(os.path.join(d, 'cluster.json')) as f:
            killed_at = json.load(f)['last_kill']['at']   # right after the SIGKILLs
        failover = t_ok - killed_at
        new_primary = rest_primary(env)
        log('FAILOVER: a write through haproxy succeeded %.2f s after kill -9 of pg%d (%.2f s after '
            'kill-pg-primary was started; %d attempts); new primary pg%s (port %s), the former sync standby was pg%d'
            % (failover, primary, time.monotonic() - t_kill, attempts, new_primary, out.splitlines()[-1], sync_m))
        check(new_primary and new_primary != primary, 'no new primary')
        check(new_primary == sync_m, 'Patroni promoted pg%s, not the synchronous standby pg%d' % (new_primary, sync_m))
        check(must(dsn, "SELECT count(*) FROM failover_probe WHERE tag = 'before-failover'") == '1',
              'the row committed before the failover is gone')
        run([tool, 'wait-primary', d], 60)

        # 4. The dead machine comes back empty: re-cloned, streams again.
        run([tool, 'restart-pg-member', d, str(primary)], 120)
        rows = must(su, "SELECT application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication"
                        " ORDER BY 1").splitlines()
        check(len(rows) == 2 and any(r.endswith(' sync') for r in rows), 'after rejoin: %s' % rows)
        log('after rejoin: %s' % rows)
        run([tool, 'status', d], 30)

        # 5. Stop; nothing left.
        _, t_stop = run([tool, 'stop', d], 120)
        left = cluster_procs(mark, d)
        check(not left, 'processes left after stop:\n  ' + '\n  '.join(left))
        log('RESULT: start %.1f s, failover %.2f s, stop %.1f s; no process left' % (t_start, failover, t_stop))
        ok = True
    except (TestFailed, subprocess.TimeoutExpired) as e:
        log('FAILED: %s' % e)
        for root, _, files in os.walk(d):
            for fn in files:
                if fn.endswith('.log'):
                    p = os.path.join(root, fn)
                    with open(p, errors='replace') as f:
                        tail = f.readlines()[-30:]
                    log('--- %s\n%s' % (p, ''.join(tail)))
    finally:
        if mark is not None and cluster_procs(mark, d):
            subprocess.run([tool, 'stop', d], timeout=120)
        if ok and not a.keep:
            shutil.rmtree(d, ignore_errors=True)
        elif not ok:
            log('cluster directory kept: %s' % d)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
