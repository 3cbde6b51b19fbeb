/* SPDX-License-Identifier: MIT */
/*
 * cmd_exporter.c: `tierpool exporter [--listen ADDR:PORT] [PID...]`, a small
 * HTTP server for Prometheus: GET /metrics answers with the latest snapshot
 * of every publishing process this user may read (or of the PIDs given) in
 * the Prometheus text format, each series labelled pid, comm, pool and
 * pool_id; any other path is 404, any other method 405.
 *
 * One thread multiplexes the connections with poll(): at most
 * --max-connections at once (more are answered 503 and closed), each with
 * REQUEST_DEADLINE_MS from its accept to the end of its answer, so slow or
 * idle clients cannot stall a scrape. One request per connection
 * (Connection: close). Without PIDs it serves whoever publishes at each
 * scrape (segments left behind are removed first) and runs until SIGINT or
 * SIGTERM; with PIDs it stops once they have all exited. --max-requests
 * stops it after that many answers.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"
#include "tierpool_segment.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:9464"
#define DEFAULT_MAX_CONNECTIONS 64
#define REQUEST_DEADLINE_MS 5000 /* from accept to the last byte of the answer */
#define REQUEST_HEAD_MAX 8192
#define MAX_PIDS 64               /* PIDs on the command line */
#define MAX_PROCESSES 4096        /* processes served at once without PIDs */

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses) as a listening
 * socket; -1 with a message on failure. The bound address goes to `shown`. */
static int listen_on(const char *spec, char *shown, size_t cap)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || !colon[1] || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "tierpool exporter: --listen wants HOST:PORT, not '%s'\n", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
    int err = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
    if (err) {
        fprintf(stderr, "tierpool exporter: cannot listen on %s: %s\n", spec, gai_strerror(err));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* accepted until EAGAIN */
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        fprintf(stderr, "tierpool exporter: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char name[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        if (addr.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&addr;
            inet_ntop(AF_INET6, &a->sin6_addr, name, sizeof name);
            port = ntohs(a->sin6_port);
            snprintf(shown, cap, "[%s]:%d", name, port);
            return fd;
        }
        const struct sockaddr_in *a = (const struct sockaddr_in *)&addr;
        inet_ntop(AF_INET, &a->sin_addr, name, sizeof name);
        port = ntohs(a->sin_port);
    }
    snprintf(shown, cap, "%s:%d", name, port);
    return fd;
}

typedef struct connection {
    int fd;
    uint64_t deadline;
    char head[REQUEST_HEAD_MAX];
    size_t head_len;
    char *answer; /* once the request is read: what is left to send */
    size_t answer_len, sent;
} connection;

typedef struct exporter {
    pid_t pids[MAX_PIDS];      /* the PIDs given, or none: every publisher */
    size_t pid_count;
    bool classes;              /* the per-class families too */
    tpi_shm *snap;             /* scratch for one process's snapshot */
    tp_stats *pools;           /* the pools of a scrape, all processes */
    char (*labels)[PROCESS_LABELS_CAP];
    const char **prefix;
    size_t pool_cap;
    cli_buffer body;
    bool gone;                 /* every PID given has exited */
} exporter;

/* ---- the metrics ---------------------------------------------------------------- */

static bool reserve_pools(exporter *e, size_t need)
{
    if (need <= e->pool_cap) return true;
    size_t cap = e->pool_cap ? e->pool_cap : 64;
    while (cap < need) cap *= 2;
    tp_stats *pools = realloc(e->pools, cap * sizeof *pools);
    if (pools) e->pools = pools;
    char(*labels)[PROCESS_LABELS_CAP] = realloc(e->labels, cap * sizeof *labels);
    if (labels) e->labels = labels;
    const char **prefix = realloc(e->prefix, cap * sizeof *prefix);
    if (prefix) e->prefix = prefix;
    if (!pools || !labels || !prefix) return false;
    e->pool_cap = cap;
    return true;
}

/* Adds process pid's pools to the scrape, and the age of its snapshot;
 * false if it has none to read. */
static bool gather_process(exporter *e, pid_t pid, size_t *count, double *age)
{
    if (snapshot_read(pid, e->snap) != SNAPSHOT_OK) return false;
    uint32_t n = e->snap->pool_count;
    if (!reserve_pools(e, *count + n)) return false;
    char raw[64], comm[6 * 64 + 1];
    process_name(pid, raw, sizeof raw);
    tpi_escape(comm, sizeof comm, raw, sizeof raw, TPI_ESCAPE_PROMETHEUS);
    for (uint32_t i = 0; i < n; i++) {
        e->pools[*count] = e->snap->pools[i];
        snprintf(e->labels[*count], PROCESS_LABELS_CAP, "pid=\"%ld\",comm=\"%s\",", (long)pid, comm);
        (*count)++;
    }
    uint64_t now = cli_clock_ms();
    *age = now > e->snap->updated_ms ? (double)(now - e->snap->updated_ms) / 1000.0 : 0.0;
    return true;
}

static void append(void *arg, const char *text)
{
    cli_writer w = cli_buffer_writer(arg);
    w.write(w.arg, text, strlen(text));
}

/* The body of /metrics into e->body; false if there is nothing to serve
 * (PIDs given, none readable). */
static bool scrape(exporter *e)
{
    static pid_t listed[MAX_PROCESSES];
    const pid_t *pids = e->pids;
    size_t npids = e->pid_count;
    if (!npids) {
        snapshot_prune(NULL);
        npids = snapshot_list(listed, MAX_PROCESSES);
        if (npids > MAX_PROCESSES) npids = MAX_PROCESSES;
        pids = listed;
    }
    size_t count = 0, served = 0;
    cli_buffer age_lines = {0};
    cli_writer aw = cli_buffer_writer(&age_lines);
    for (size_t i = 0; i < npids; i++) {
        size_t before = count;
        double age;
        if (!gather_process(e, pids[i], &count, &age)) continue;
        served++;
        /* the age of the snapshot, labelled as the process's pools are */
        const char *labels = count > before ? e->labels[before] : NULL;
        if (labels) cli_printf(&aw, "tierpool_snapshot_age_seconds{%.*s} %.3f\n", (int)strlen(labels) - 1, labels, age);
    }
    if (e->pid_count && !served) {
        cli_buffer_free(&age_lines);
        return false;
    }
    for (size_t i = 0; i < count; i++) e->prefix[i] = e->labels[i];
    e->body.len = 0;
    e->body.failed = false;
    tpi_stats_prometheus(e->pools, count, e->prefix, e->classes, append, &e->body);
    cli_writer w = cli_buffer_writer(&e->body);
    cli_printf(&w, "# HELP tierpool_snapshot_age_seconds Seconds since the process last published.\n"
                   "# TYPE tierpool_snapshot_age_seconds gauge\n");
    if (age_lines.data) w.write(w.arg, age_lines.data, age_lines.len);
    cli_printf(&w, "# HELP tierpool_exporter_processes Processes this scrape read statistics from.\n"
                   "# TYPE tierpool_exporter_processes gauge\ntierpool_exporter_processes %zu\n", served);
    cli_buffer_free(&age_lines);
    return true;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static void answer(connection *c, const char *status, const char *type, const char *body, size_t len, bool head)
{
    char header[256];
    int n = snprintf(header, sizeof header,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     type, len);
    size_t total = (size_t)n + (head ? 0 : len);
    c->answer = malloc(total);
    if (!c->answer) return;
    memcpy(c->answer, header, (size_t)n);
    if (!head) memcpy(c->answer + n, body, len);
    c->answer_len = total;
    c->sent = 0;
}

static void answer_text(connection *c, const char *status, const char *body, bool head)
{
    answer(c, status, "text/plain; charset=utf-8", body, strlen(body), head);
}

/* Whether the request head is whole (its blank line, or the buffer full). */
static bool head_complete(const connection *c)
{
    return strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n") || c->head_len >= sizeof c->head - 1;
}

static void respond(exporter *e, connection *c)
{
    char method[16], path[2048];
    if (sscanf(c->head, "%15s %2047s HTTP/", method, path) != 2) {
        answer_text(c, "400 Bad Request", "bad request\n", false);
        return;
    }
    path[strcspn(path, "?#")] = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        answer_text(c, "405 Method Not Allowed", "only GET and HEAD\n", false);
    } else if (strcmp(path, "/metrics") != 0) {
        answer_text(c, "404 Not Found", "not found: the metrics are at /metrics\n", head);
    } else if (!scrape(e)) {
        answer_text(c, "503 Service Unavailable", "no process given is publishing statistics\n", head);
    } else if (e->body.failed) {
        answer_text(c, "500 Internal Server Error", "out of memory\n", head);
    } else {
        answer(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", e->body.data, e->body.len, head);
    }
}

static void close_connection(connection *c)
{
    close(c->fd);
    free(c->answer);
    c->fd = -1;
    c->answer = NULL;
}

/* Reads what the client sent; false once the connection is over. */
static bool receive(exporter *e, connection *c)
{
    ssize_t n = recv(c->fd, c->head + c->head_len, sizeof c->head - 1 - c->head_len, MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) return false;
    c->head_len += (size_t)n;
    c->head[c->head_len] = '\0';
    if (head_complete(c)) {
        respond(e, c);
        if (!c->answer) return false;
    }
    return true;
}

/* Sends what it can; false once the answer is sent (or cannot be). */
static bool transmit(connection *c)
{
    ssize_t n = send(c->fd, c->answer + c->sent, c->answer_len - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c->sent += (size_t)n;
    return c->sent < c->answer_len;
}

/* A client past the cap: told so at once, without waiting on it. */
static void refuse(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";
    if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* nothing more to do */
    }
    close(fd);
}

static bool all_gone(const exporter *e)
{
    for (size_t i = 0; i < e->pid_count; i++)
        if (process_alive(e->pids[i])) return false;
    return e->pid_count > 0;
}

static int exporter_loop(exporter *e, int listener, long max_requests, long max_connections)
{
    static volatile int stop;
    cli_stop_on_signals(&stop);
    connection *conns = calloc((size_t)max_connections, sizeof *conns);
    struct pollfd *fds = calloc((size_t)max_connections + 1, sizeof *fds);
    if (!conns || !fds) {
        free(conns);
        free(fds);
        fprintf(stderr, "tierpool exporter: out of memory\n");
        return 1;
    }
    for (long i = 0; i < max_connections; i++) conns[i].fd = -1;
    long answered = 0, open = 0;
    uint64_t next_check = cli_clock_ms() + 1000;
    while (!stop && !e->gone && (!max_requests || answered < max_requests)) {
        uint64_t now = cli_clock_ms(), wake = next_check;
        fds[0] = (struct pollfd){listener, POLLIN, 0};
        for (long i = 0; i < max_connections; i++) {
            connection *c = &conns[i];
            fds[i + 1] = (struct pollfd){c->fd, (short)(c->answer ? POLLOUT : POLLIN), 0};
            if (c->fd >= 0 && c->deadline < wake) wake = c->deadline;
        }
        int n = poll(fds, (nfds_t)max_connections + 1, wake > now ? (int)(wake - now) : 0);
        if (n < 0 && errno != EINTR) break;
        now = cli_clock_ms();
        for (long i = 0; n > 0 && i < max_connections; i++) {
            connection *c = &conns[i];
            if (c->fd < 0 || !fds[i + 1].revents) continue;
            bool more = c->answer ? transmit(c) : receive(e, c);
            if (c->answer && !more && c->sent == c->answer_len) answered++;
            if (!more) {
                close_connection(c);
                open--;
            }
        }
        for (long i = 0; i < max_connections; i++) { /* past the deadline: cut off */
            if (conns[i].fd >= 0 && now >= conns[i].deadline) {
                close_connection(&conns[i]);
                open--;
            }
        }
        if (n > 0 && (fds[0].revents & POLLIN)) {
            int fd;
            while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                if (open >= max_connections) {
                    refuse(fd);
                    continue;
                }
                long i = 0;
                while (conns[i].fd >= 0) i++;
                conns[i] = (connection){.fd = fd, .deadline = now + REQUEST_DEADLINE_MS};
                open++;
            }
        }
        if (now >= next_check) {
            e->gone = all_gone(e);
            next_check = now + 1000;
        }
    }
    for (long i = 0; i < max_connections; i++)
        if (conns[i].fd >= 0) close_connection(&conns[i]);
    free(conns);
    free(fds);
    if (e->gone) fprintf(stderr, "tierpool exporter: every process given has exited\n");
    return 0;
}

static int exporter_main(int argc, char **argv)
{
    enum { OPT_CLASSES = 256, OPT_MAX_CONNECTIONS, OPT_MAX_REQUESTS };
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"classes", no_argument, NULL, OPT_CLASSES},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_exporter, argc, argv, "l:", options);
    const char *listen_spec = DEFAULT_LISTEN;
    long max_requests = 0, max_connections = DEFAULT_MAX_CONNECTIONS;
    exporter e = {.pid_count = 0};
    int opt;
    while ((opt = cli_getopt(&p)) != -1) {
        if (opt == 'l') listen_spec = optarg;
        else if (opt == OPT_CLASSES) e.classes = true;
        else if (opt == OPT_MAX_CONNECTIONS) cli_count_value(&p, &max_connections);
        else cli_count_value(&p, &max_requests);
    }
    for (const char *arg; (arg = cli_next_argument(&p));) {
        if (e.pid_count == MAX_PIDS) cli_usage_error(&p, "at most %d process ids", MAX_PIDS);
        else if (!cli_parse_pid(arg, &e.pids[e.pid_count++])) cli_usage_error(&p, "'%s' is not a process id", arg);
    }
    if (!cli_finish(&p, NULL)) return cli_stop_status(&p);

    /* The PIDs given must publish now (a typo is better told at once). */
    for (size_t i = 0; i < e.pid_count; i++) {
        tpi_shm *first = snapshot_first(cmd_exporter.name, e.pids[i]);
        if (!first) return 1;
        free(first);
    }
    e.snap = snapshot_new();
    if (!e.snap) return 1;
    int rc = 1;
    char shown[128];
    int listener = listen_on(listen_spec, shown, sizeof shown);
    if (listener >= 0) {
        if (e.pid_count) printf("tierpool exporter: serving http://%s/metrics for %zu process%s\n", shown,
                                e.pid_count, e.pid_count == 1 ? "" : "es");
        else printf("tierpool exporter: serving http://%s/metrics for every publishing process\n", shown);
        fflush(stdout);
        rc = exporter_loop(&e, listener, max_requests, max_connections);
        close(listener);
    }
    free(e.snap);
    free(e.pools);
    free(e.labels);
    free(e.prefix);
    cli_buffer_free(&e.body);
    return rc;
}

const command cmd_exporter = {
    "exporter", "[--listen HOST:PORT] [--classes] [--max-connections N] [--max-requests N] [PID...]",
    "serve publishing processes' statistics to Prometheus over HTTP",
    "options:\n"
    "  -l, --listen HOST:PORT   the address to listen on (default " DEFAULT_LISTEN ");\n"
    "                           port 0 takes a free one; [::1]:PORT for IPv6\n"
    "      --classes            the per-size-class families too (more series)\n"
    "      --max-connections N  clients at once (default 64); more get 503\n"
    "      --max-requests N     stop after answering N requests\n"
    "\n"
    "GET /metrics answers with the Prometheus text format (Content-Type:\n"
    "text/plain; version=0.0.4): every process publishing statistics that this\n"
    "user may read, or the PIDs given, each series labelled pid, comm (the\n"
    "process name), pool and pool_id. Without PIDs, processes that start later\n"
    "appear at the next scrape and those that exit disappear; the exporter runs\n"
    "until SIGINT or SIGTERM. With PIDs it stops once they have all exited.\n"
    "A client has 5 s from connecting to receiving its answer. The first line\n"
    "on stdout names the address served. A scrape is as fresh as the\n"
    "processes' snapshots (TIERPOOL_PUBLISH_INTERVAL).\n",
    exporter_main,
};
