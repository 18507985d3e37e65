/*
 * delay_proxy: a TCP proxy on 127.0.0.1 that adds round-trip latency without throttling
 * bandwidth. The C twin of latency_proxy.py, with the same model and command line:
 *
 *     cc -O2 -Wall -Wextra -o delay_proxy delay_proxy.c
 *     delay_proxy --upstream 127.0.0.1:8080 --rtt-ms 20 [--port 0]
 *
 * It prints "LISTENING <port>" on stdout once it accepts connections. On SIGTERM or
 * SIGINT it prints one line on stderr and exits 0: how many chunks it forwarded and how
 * late (write time - due time: p50, p99, max). Chunks that fell due while the receiver
 * was not reading (its socket buffer full) are counted apart: that wait is the
 * receiver's, not the instrument's.
 *
 * Why it exists: the asyncio proxy's own CPU time, task switching and one-off start-up
 * calibration make its hops late, or early, by up to milliseconds, and the kernel's
 * netem qdisc is not available where the benchmarks run. Here one thread does a few
 * syscalls per chunk and sleeps in epoll until a timerfd fires at the nanosecond a
 * chunk is due (epoll_wait's own timeout is in whole milliseconds).
 *
 * Model:
 * - Every chunk read from one side is written to the other side RTT/2 after it was
 *   read, in order. Reading goes on while earlier chunks wait, so the delay is a
 *   pipeline and throughput is not reduced. At most QUEUE_LIMIT bytes wait per
 *   direction; past that the side is not read (backpressure) until the queue drains.
 * - A new connection waits one RTT before the upstream connection is opened: the
 *   handshake a real link would cost. The client's early bytes wait in the kernel.
 * - An EOF travels like data: RTT/2 after it was read, behind the bytes before it, it
 *   is forwarded as shutdown(SHUT_WR), as a FIN would cross a link (latency_proxy.py
 *   forwards it as soon as the data before it has been written). A pair is freed once both EOFs have been
 *   forwarded, or at once on any error (reset, broken pipe: both sockets are closed).
 * - TCP_NODELAY on both sockets, TCP_QUICKACK re-armed after every read from the
 *   server: the proxy terminates TCP, so a delayed ACK or Nagle wait of its own would
 *   stall the server (the nginx trap in README.md) where no real link would.
 * - Only loopback upstreams: this is a benchmark instrument, not a relay.
 *
 * Where allowed (root, CAP_SYS_NICE) it runs at real-time priority (SCHED_FIFO 1): a
 * real link delivers packets from the kernel, ahead of every user task, whereas at
 * normal priority a busy client delays the proxy's wake-ups by up to a scheduler slice
 * (under the benchmarks' fetch_many on a 2-vCPU VM: p99 lateness up to ~2.4 ms at normal
 * priority, mostly under 0.2 ms real-time). Without the permission it runs at normal
 * priority and says so in its summary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define QUEUE_LIMIT ((size_t)64 << 20)
#define NEVER INT64_MAX

struct chunk {
    struct chunk *next;
    int64_t due; /* CLOCK_MONOTONIC, ns */
    size_t len, off; /* len 0 is the EOF */
    char data[];
};

struct conn;

/* One socket of a pair; also the epoll cookie, so an event leads to its pair. */
struct end {
    struct conn *conn;
    int fd;
    uint32_t mask; /* registered events; 0 = not in the epoll set at all */
};

struct dir {
    struct end *src, *dst;
    struct chunk *head, *tail;
    size_t queued;
    bool eof_read, blocked, done; /* blocked: dst said EAGAIN, wait for EPOLLOUT */
    int64_t unblocked_at; /* chunks due before this waited for the receiver, not us */
};

enum state { HANDSHAKE, CONNECTING, PUMPING };

struct conn {
    struct conn *next;
    enum state state;
    bool dead; /* sockets closed; freed after the current batch of events */
    int64_t connect_due;
    struct end client, server;
    struct dir up, down; /* up: client to server */
};

static int ep;
static struct conn *conns;
static struct sockaddr_in upstream;
static int64_t rtt_ns;
static unsigned long long nconns, nchunks, nheld;
static int64_t *late; /* lateness of every forwarded chunk, ns */
static size_t nlate, caplate;
static char buf[CHUNK];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_int(int fd, int level, int opt)
{
    int one = 1;
    setsockopt(fd, level, opt, &one, sizeof one); /* best effort, like the Python one */
}

static void set_interest(struct end *e, uint32_t want)
{
    if (e->fd < 0 || want == e->mask)
        return;
    /* Deregister rather than wait for nothing: an idle socket in the set would keep
     * reporting EPOLLHUP (level-triggered) and spin the loop. */
    struct epoll_event ev = {.events = want, .data.ptr = e};
    int op = !e->mask ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(ep, op, e->fd, &ev) < 0) {
        perror("delay_proxy: epoll_ctl");
        exit(1);
    }
    e->mask = want;
}

static void drop_queue(struct dir *d)
{
    while (d->head) {
        struct chunk *k = d->head;
        d->head = k->next;
        free(k);
    }
    d->tail = NULL;
}

static void kill_conn(struct conn *c)
{
    if (c->dead)
        return;
    /* close() also takes the sockets out of the epoll set */
    if (c->client.fd >= 0)
        close(c->client.fd);
    if (c->server.fd >= 0)
        close(c->server.fd);
    drop_queue(&c->up);
    drop_queue(&c->down);
    c->dead = true;
}

static void record(int64_t lateness)
{
    if (nlate == caplate) {
        size_t cap = caplate ? caplate * 2 : 4096;
        int64_t *grown = realloc(late, cap * sizeof *grown);
        if (!grown)
            return; /* counted, not kept: the percentiles lose a sample */
        late = grown;
        caplate = cap;
    }
    late[nlate++] = lateness;
}

static void enqueue(struct conn *c, struct dir *d, size_t n, int64_t due)
{
    struct chunk *k = malloc(sizeof *k + n);
    if (!k) {
        kill_conn(c);
        return;
    }
    k->next = NULL;
    k->due = due;
    k->len = n;
    k->off = 0;
    memcpy(k->data, buf, n);
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->queued += n;
}

/* Writes what is due on d, until something is not yet due or dst would block. */
static void flush(struct conn *c, struct dir *d)
{
    while (!c->dead && !d->blocked && d->head) {
        struct chunk *k = d->head;
        int64_t now = now_ns();
        if (k->due > now)
            return;
        if (k->len == 0) {
            if (shutdown(d->dst->fd, SHUT_WR) < 0) {
                kill_conn(c);
                return;
            }
            d->done = true;
            d->head = d->tail = NULL; /* nothing is read after an EOF */
            free(k);
            if (c->up.done && c->down.done)
                kill_conn(c);
            return;
        }
        ssize_t n = send(d->dst->fd, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                d->blocked = true;
            else if (errno != EINTR)
                kill_conn(c);
            continue;
        }
        if (k->off == 0) {
            /* The instrument's lateness is its own: a chunk that fell due while the
             * receiver was not reading is counted apart, not as late. */
            nchunks++;
            if (k->due <= d->unblocked_at)
                nheld++;
            else
                record(now - k->due);
        }
        k->off += (size_t)n;
        d->queued -= (size_t)n;
        if (k->off == k->len) {
            d->head = k->next;
            if (!d->head)
                d->tail = NULL;
            free(k);
        }
    }
}

static void on_readable(struct conn *c, struct dir *d)
{
    ssize_t n = recv(d->src->fd, buf, sizeof buf, 0);
    if (d->src == &c->server)
        set_int(c->server.fd, IPPROTO_TCP, TCP_QUICKACK); /* Linux clears it as it goes */
    int64_t due = now_ns() + rtt_ns / 2;
    if (n > 0) {
        enqueue(c, d, (size_t)n, due);
    } else if (n == 0) {
        d->eof_read = true;
        enqueue(c, d, 0, due);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        kill_conn(c);
    }
}

static void start_connect(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        kill_conn(c);
        return;
    }
    c->server.fd = fd;
    set_int(fd, IPPROTO_TCP, TCP_NODELAY);
    if (connect(fd, (struct sockaddr *)&upstream, sizeof upstream) == 0)
        c->state = PUMPING;
    else if (errno == EINPROGRESS)
        c->state = CONNECTING;
    else
        kill_conn(c); /* refused: the client sees its connection closed */
}

static void finish_connect(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->server.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
        kill_conn(c);
    else
        c->state = PUMPING;
}

static void on_event(struct end *e, uint32_t events)
{
    struct conn *c = e->conn;
    if (c->dead)
        return; /* killed earlier in this batch */
    bool client = e == &c->client;
    if (!client && c->state == CONNECTING) {
        finish_connect(c);
        return;
    }
    struct dir *in = client ? &c->up : &c->down, *out = client ? &c->down : &c->up;
    if ((e->mask & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        on_readable(c, in);
    if ((e->mask & EPOLLOUT) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
        out->blocked = false;
        out->unblocked_at = now_ns();
        flush(c, out);
    }
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) /* EMFILE would repeat */
                perror("delay_proxy: accept");
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        set_int(fd, IPPROTO_TCP, TCP_NODELAY);
        c->client = (struct end){.conn = c, .fd = fd};
        c->server = (struct end){.conn = c, .fd = -1};
        c->up = (struct dir){.src = &c->client, .dst = &c->server};
        c->down = (struct dir){.src = &c->server, .dst = &c->client};
        c->state = HANDSHAKE;
        c->connect_due = now_ns() + rtt_ns;
        c->next = conns;
        conns = c;
        nconns++;
    }
}

static bool reading(const struct dir *d)
{
    return !d->eof_read && d->queued < QUEUE_LIMIT;
}

static int64_t earliest(const struct dir *d, int64_t next)
{
    return d->head && !d->blocked && d->head->due < next ? d->head->due : next;
}

/* After every batch of events: do what has come due, free what died, register what
 * each socket now waits for, and return when the next thing comes due. */
static int64_t run_due(void)
{
    int64_t next = NEVER;
    for (struct conn **p = &conns; *p;) {
        struct conn *c = *p;
        if (!c->dead && c->state == HANDSHAKE && c->connect_due <= now_ns())
            start_connect(c);
        if (!c->dead && c->state == PUMPING) {
            flush(c, &c->up);
            flush(c, &c->down);
        }
        if (c->dead) {
            *p = c->next;
            free(c);
            continue;
        }
        uint32_t cm = 0, sm = 0;
        if (c->state == HANDSHAKE) {
            next = c->connect_due < next ? c->connect_due : next;
        } else {
            cm |= reading(&c->up) ? EPOLLIN : 0; /* queued until the server is there */
        }
        if (c->state == CONNECTING) {
            sm = EPOLLOUT;
        } else if (c->state == PUMPING) {
            cm |= c->down.blocked ? EPOLLOUT : 0;
            sm = (reading(&c->down) ? EPOLLIN : 0) | (c->up.blocked ? EPOLLOUT : 0);
            next = earliest(&c->down, earliest(&c->up, next));
        }
        set_interest(&c->client, cm);
        set_interest(&c->server, sm);
        p = &c->next;
    }
    return next;
}

static void arm(int tfd, int64_t due, int64_t *armed)
{
    if (due == *armed)
        return;
    struct itimerspec its = {0}; /* all zero disarms it */
    if (due != NEVER) {
        its.it_value.tv_sec = due / 1000000000;
        its.it_value.tv_nsec = due % 1000000000;
    }
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        perror("delay_proxy: timerfd_settime");
        exit(1);
    }
    *armed = due;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(double p)
{
    if (!nlate)
        return 0.0;
    double want = p * (double)nlate; /* nearest rank: the ceil(p*n)-th smallest */
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    return (double)late[rank ? rank - 1 : 0] / 1e6;
}

static void usage(void)
{
    fputs("usage: delay_proxy --upstream 127.0.0.1:PORT --rtt-ms MS [--port PORT]\n", stderr);
    exit(2);
}

static void parse_upstream(const char *arg)
{
    char host[64];
    const char *colon = strrchr(arg, ':');
    if (!colon || (size_t)(colon - arg) >= sizeof host)
        usage();
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        usage();
    upstream.sin_family = AF_INET;
    upstream.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &upstream.sin_addr) != 1 ||
        (ntohl(upstream.sin_addr.s_addr) >> 24) != 127) {
        fputs("delay_proxy: upstream must be on the loopback interface\n", stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    double rtt_ms = 0.0;
    long port = 0;
    bool have_upstream = false;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        char *end;
        if (strcmp(argv[i], "--upstream") == 0) {
            parse_upstream(argv[++i]);
            have_upstream = true;
        } else if (strcmp(argv[i], "--rtt-ms") == 0) {
            rtt_ms = strtod(argv[++i], &end);
            if (*end || !(rtt_ms >= 0.0 && rtt_ms < 1e7))
                usage();
        } else if (strcmp(argv[i], "--port") == 0) {
            port = strtol(argv[++i], &end, 10);
            if (*end || port < 0 || port > 65535)
                usage();
        } else {
            usage();
        }
    }
    if (!have_upstream)
        usage();
    rtt_ns = (int64_t)(rtt_ms * 1e6 + 0.5);

    /* Termination arrives as an event in the loop, so the summary is printed by
     * ordinary code rather than inside a signal handler. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sched_param prio = {.sched_priority = 1};
    bool realtime = sched_setscheduler(0, SCHED_FIFO, &prio) == 0;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (lfd >= 0)
        set_int(lfd, SOL_SOCKET, SO_REUSEADDR);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(lfd, 256) < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        perror("delay_proxy: listen");
        return 1;
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (tfd < 0 || sfd < 0 || ep < 0) {
        perror("delay_proxy: setup");
        return 1;
    }
    /* Tags for the three fds that belong to no connection. */
    static struct end listener, timer, signals;
    struct {
        int fd;
        struct end *tag;
    } fixed[] = {{lfd, &listener}, {tfd, &timer}, {sfd, &signals}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = fixed[i].tag};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fixed[i].fd, &ev) < 0) {
            perror("delay_proxy: epoll_ctl");
            return 1;
        }
    }
    printf("LISTENING %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int64_t armed = NEVER;
    for (bool running = true; running;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            perror("delay_proxy: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct end *tag = evs[i].data.ptr;
            if (tag == &listener) {
                accept_all(lfd);
            } else if (tag == &timer) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    perror("delay_proxy: timerfd");
                armed = NEVER; /* fired: it must be set again even for the same time */
            } else if (tag == &signals) {
                running = false;
            } else {
                on_event(tag, evs[i].events);
            }
        }
        arm(tfd, run_due(), &armed);
    }

    qsort(late, nlate, sizeof *late, cmp_i64);
    struct rusage ru; /* the instrument's own CPU: what it takes from the machine */
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    fprintf(stderr,
            "delay_proxy: %llu chunks forwarded on %llu connections, lateness"
            " p50 %.3f ms p99 %.3f ms max %.3f ms; %llu more waited for a receiver"
            " that was not reading; cpu %.3f s at %s priority\n",
            nchunks - nheld, nconns, percentile_ms(0.50), percentile_ms(0.99),
            percentile_ms(1.0), nheld, cpu, realtime ? "real-time" : "normal");
    return 0;
}
