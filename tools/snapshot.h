/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h: reading the statistics another process publishes
 * (TIERPOOL_PUBLISH=1 or tp_monitor_start()) from its shared-memory segment
 * "/tierpool.<pid>" (tierpool_segment.h), and what /proc says of that process.
 */
#ifndef TP_CLI_SNAPSHOT_H
#define TP_CLI_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tierpool_segment.h"

typedef enum snapshot_status {
    SNAPSHOT_OK,
    SNAPSHOT_NOT_PUBLISHING, /* the process runs and has no segment */
    SNAPSHOT_NO_PROCESS,     /* no such process (a segment may be left from it) */
    SNAPSHOT_STALE,          /* the segment is left from an earlier process of that pid */
    SNAPSHOT_DENIED,         /* the segment belongs to another user */
    SNAPSHOT_UNTRUSTED,      /* a file of its name is no segment of the process: not a
                              * regular file, or not the process's user's (nor ours) */
    SNAPSHOT_ELSEWHERE,      /* published from another pid namespace: its pid is not ours */
    SNAPSHOT_INCOMPATIBLE,   /* another version of the layout */
    SNAPSHOT_BUSY,           /* no consistent copy yet: being set up, or no first update */
} snapshot_status;

/* The folder the segments are in: /dev/shm (for tests, another). */
void snapshot_set_dir(const char *dir);
/* Checks a copied segment as process pid's and makes it safe to print:
 * counts within bounds, names NUL-terminated, figures finite. */
snapshot_status snapshot_check(tpi_shm *snap, pid_t pid);

/* The inode of this process's pid namespace, or 0. */
uint64_t snapshot_pid_namespace(void);

/* A zeroed snapshot (about 180 KiB, so not on the stack); NULL if out of
 * memory. Freed with free(). */
tpi_shm *snapshot_new(void);
/* Copies the latest snapshot of process `pid` into *out; when the status is
 * not SNAPSHOT_OK, *out may hold a partial copy. */
snapshot_status snapshot_read(pid_t pid, tpi_shm *out);
/* Maps process pid's segment for reading and writing (a request of
 * `tierpool profile`), once a snapshot of it reads SNAPSHOT_OK; unmap it
 * with munmap(*map, sizeof(tpi_shm)). */
snapshot_status snapshot_map_writable(pid_t pid, tpi_shm **map);
/* The same, retrying for up to wait_ms while the status is SNAPSHOT_BUSY
 * (a process that has just started publishing). */
snapshot_status snapshot_read_wait(pid_t pid, tpi_shm *out, uint64_t wait_ms);
/* How long a command waits for the first snapshot of a process that has
 * just started publishing (it writes its first one at once). */
#define SNAPSHOT_FIRST_WAIT_MS 3000
/* A new snapshot holding process pid's latest, for command `cmd`; NULL
 * (with the reason printed) if there is none. */
tpi_shm *snapshot_first(const char *cmd, pid_t pid);
/* Prints why a read failed, as "tierpool CMD: ..."; returns 1. */
int snapshot_report(const char *cmd, pid_t pid, snapshot_status status);

/* Removes the segments this user may remove (its own; root: any) that are
 * left behind: their process is gone, or no longer maps them (it called
 * exec) and they are older than SNAPSHOT_PRUNE_AGE_S. Each removal is
 * reported to `report` if not NULL. Returns how many were removed. */
#define SNAPSHOT_PRUNE_AGE_S 5
size_t snapshot_prune(FILE *report);
/* The processes publishing now (segments in /dev/shm whose process runs),
 * sorted by pid; returns how many there are, of which up to cap are stored. */
size_t snapshot_list(pid_t *pids, size_t cap);
/* Prints a table of those processes: pid, command, pools, memory, age. */
void snapshot_print_list(FILE *out, const pid_t *pids, size_t count);

/* The process's command name (/proc/PID/comm, up to 15 bytes any user may
 * set), or "?"; process_name_shown escapes it for a terminal. */
#define PROCESS_NAME_SHOWN (6 * 64 + 1)
/* Room for `pid="N",comm="ESCAPED",` */
#define PROCESS_LABELS_CAP (PROCESS_NAME_SHOWN + 40)
void process_name(pid_t pid, char *buf, size_t cap);
void process_name_shown(pid_t pid, char *buf, size_t cap);
/* Seconds since the process started, or -1 if unknown. */
double process_uptime_s(pid_t pid);
/* Whether a process `pid` exists (perhaps another user's). */
bool process_alive(pid_t pid);

#endif /* TP_CLI_SNAPSHOT_H */
