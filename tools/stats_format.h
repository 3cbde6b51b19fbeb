/* SPDX-License-Identifier: MIT */
/*
 * stats_format.h: a published snapshot as text, JSON or Prometheus text,
 * the same as the library's tp_stats_write(NULL, format, ...) would write
 * in the publishing process.
 */
#ifndef TP_CLI_STATS_FORMAT_H
#define TP_CLI_STATS_FORMAT_H

#include "tierpool_segment.h"
#include "cli.h"

/* format: TP_STATS_TEXT, TP_STATS_JSON or TP_STATS_PROMETHEUS. */
void stats_format(cli_writer *w, const tpi_shm *snap, int format);

#endif /* TP_CLI_STATS_FORMAT_H */
