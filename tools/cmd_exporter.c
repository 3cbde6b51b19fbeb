/* SPDX-License-Identifier: MIT */
/*
 * cmd_exporter.c: `tierpool exporter --listen ADDR:PORT PID`, a small HTTP
 * server for Prometheus: GET /metrics answers with the latest snapshot of
 * process PID in the Prometheus text format (what `tierpool stats PID
 * --prometheus` prints); any other path is 404, any other method 405.
 *
 * One thread, one request per connection (Connection: close), plain
 * sockets. It stops on SIGINT or SIGTERM, when the process exits, or after
 * --max-requests requests. A client gets 2 s to send its request.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"
#include "stats_format.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:9464"

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
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, const char *status, const char *type, const char *body, size_t len, bool head)
{
    char header[256];
    int n = snprintf(header, sizeof header,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     type, len);
    send_all(fd, header, (size_t)n);
    if (!head) send_all(fd, body, len);
}

/* Reads the request head (up to its blank line, 8 KiB at most); the
 * request line's method and path go to method and path. */
static bool read_request(int fd, char *method, size_t mcap, char *path, size_t pcap)
{
    char buf[8192];
    size_t len = 0;
    struct timeval timeout = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (len < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) break;
    }
    buf[len] = '\0';
    char m[16], p[2048];
    if (sscanf(buf, "%15s %2047s HTTP/", m, p) != 2) return false;
    p[strcspn(p, "?#")] = '\0';
    snprintf(method, mcap, "%s", m);
    snprintf(path, pcap, "%s", p);
    return true;
}

typedef struct exporter {
    pid_t pid;
    tpi_shm *snap;
    cli_buffer body;
    bool gone; /* the process exited */
} exporter;

static void respond_text(int fd, const char *status, const char *body, bool head)
{
    respond(fd, status, "text/plain; charset=utf-8", body, strlen(body), head);
}

static void serve(exporter *e, int fd)
{
    char method[16], path[2048];
    if (!read_request(fd, method, sizeof method, path, sizeof path)) {
        respond_text(fd, "400 Bad Request", "bad request\n", false);
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(fd, "405 Method Not Allowed", "only GET and HEAD\n", false);
        return;
    }
    if (strcmp(path, "/metrics") != 0) {
        respond_text(fd, "404 Not Found", "not found: the metrics are at /metrics\n", head);
        return;
    }
    snapshot_status status = snapshot_read_wait(e->pid, e->snap, 1000);
    if (status != SNAPSHOT_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "process %ld is not publishing statistics\n", (long)e->pid);
        respond_text(fd, "503 Service Unavailable", msg, head);
        e->gone = status == SNAPSHOT_NO_PROCESS || status == SNAPSHOT_NOT_PUBLISHING;
        return;
    }
    e->body.len = 0;
    cli_writer w = cli_buffer_writer(&e->body);
    stats_format(&w, e->snap, TP_STATS_PROMETHEUS);
    if (e->body.failed) {
        respond_text(fd, "500 Internal Server Error", "out of memory\n", head);
        return;
    }
    respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", e->body.data, e->body.len, head);
}

static int exporter_loop(exporter *e, int listener, long max_requests)
{
    static volatile int stop;
    cli_stop_on_signals(&stop);
    long served = 0;
    while (!stop && !e->gone && (!max_requests || served < max_requests)) {
        struct pollfd pfd = {listener, POLLIN, 0};
        int n = poll(&pfd, 1, 1000);
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) {
            e->gone = !process_alive(e->pid);
            continue;
        }
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve(e, fd);
        close(fd);
        served++;
    }
    if (e->gone) fprintf(stderr, "tierpool exporter: process %ld has exited\n", (long)e->pid);
    return 0;
}

static int exporter_main(int argc, char **argv)
{
    cli_parser p = cli_parser_init(&cmd_exporter, argc, argv);
    const char *listen_spec = DEFAULT_LISTEN;
    long max_requests = 0;
    pid_t pid = 0;
    const char *arg;
    while ((arg = cli_next(&p))) {
        if (cli_is(&p, arg, "--listen", "-l")) listen_spec = cli_value(&p, arg);
        else if (cli_is(&p, arg, "--max-requests", NULL)) cli_count_value(&p, arg, &max_requests);
        else cli_pid_argument(&p, arg, &pid);
    }
    if (!cli_finish(&p, pid ? NULL : "no process id given")) return cli_stop_status(&p);

    exporter e = {.pid = pid, .snap = snapshot_first(cmd_exporter.name, pid)};
    if (!e.snap) return 1;
    int rc = 1;
    char shown[128];
    int listener = listen_on(listen_spec, shown, sizeof shown);
    if (listener >= 0) {
        printf("tierpool exporter: serving http://%s/metrics for process %ld\n", shown, (long)pid);
        fflush(stdout);
        rc = exporter_loop(&e, listener, max_requests);
        close(listener);
    }
    free(e.snap);
    cli_buffer_free(&e.body);
    return rc;
}

const command cmd_exporter = {
    "exporter", "[--listen HOST:PORT] [--max-requests N] PID",
    "serve a publishing process's statistics to Prometheus over HTTP",
    "options:\n"
    "  -l, --listen HOST:PORT  the address to listen on (default " DEFAULT_LISTEN ");\n"
    "                          port 0 takes a free one; [::1]:PORT for IPv6\n"
    "      --max-requests N    stop after answering N requests\n"
    "\n"
    "GET /metrics answers with the Prometheus text format (Content-Type:\n"
    "text/plain; version=0.0.4) of PID's latest snapshot; other paths are 404.\n"
    "The first line on stdout names the address served. The exporter stops on\n"
    "SIGINT or SIGTERM, or when the process exits. A scrape is as fresh as the\n"
    "process's snapshots (TIERPOOL_PUBLISH_INTERVAL).\n",
    exporter_main,
};
