/* SPDX-License-Identifier: MIT */
/*
 * stats_format.c: a published snapshot as text, JSON or Prometheus text,
 * through the library's own writer (tpi_stats_format in src/stats.c), so
 * what `tierpool stats PID` prints is what tp_stats_print(NULL, format, ...)
 * prints in process PID at the snapshot (tests/cli/ compares the two).
 */
#include "stats_format.h"

#include <string.h>

#include "tierpool_segment.h"

static void to_cli_writer(void *arg, const char *text)
{
    cli_writer *w = arg;
    w->write(w->arg, text, strlen(text));
}

void stats_format(cli_writer *w, const tpi_shm *snap, int format)
{
    uint32_t count = snap->pool_count < TPI_SHM_POOLS ? snap->pool_count : TPI_SHM_POOLS;
    tpi_stats_format(snap->pools, count, &snap->process, format, to_cli_writer, w);
}
