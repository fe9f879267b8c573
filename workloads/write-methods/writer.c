/*
 * writer: write MIB MiB of deterministic pseudo-random text to PATH with one of
 * several writing methods, so that the FUSE requests each method causes can be
 * compared (see README.md and run.sh next to this file).
 *
 * usage: writer METHOD PATH MIB
 *
 * The content is the same for every method: lines of 60..100 printable ASCII
 * characters (about 80 on average) plus '\n', from a fixed-seed xorshift
 * generator, cut at exactly MIB * 1 MiB bytes (the last line may be shorter and
 * always ends in '\n'). It is generated in memory before the first write, so
 * generation cost is the same for every method.
 *
 * Methods:
 *   big-fsync     one write(2) of everything, fsync, close
 *   big           one write(2) of everything, close
 *   chunks-fsync  write(2)s of 512 KiB, each followed by fsync, then close
 *   buffered      stdio with an 8 KiB buffer (setvbuf), one fwrite per line, fclose
 *                 (so write(2)s of 8 KiB)
 *   per-line      one write(2) per line (no buffering), close
 *   append        per 64 KiB piece: open(O_WRONLY|O_APPEND|O_CREAT), write, close
 *                 (appends to whatever PATH already holds; run.sh uses a fresh file)
 *
 * All methods but append create PATH with O_WRONLY|O_CREAT|O_TRUNC, mode 0644.
 * A short write(2) is continued with further write(2)s (never seen in practice).
 * Prints nothing on success; on error a message on stderr and exit status 1
 * (2 for usage errors).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024UL * 1024UL)
#define CHUNK (512UL * 1024UL)
#define PIECE (64UL * 1024UL)
#define STDIO_BUF (8UL * 1024UL)

static const char *path;

static void die(const char *what)
{
    fprintf(stderr, "writer: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL; /* fixed seed: same text every run */

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Fills buf[0..len) with lines; records where each line starts (lines[i]) so that the
 * per-line methods can write line by line. Returns the number of lines. */
static size_t generate(char *buf, size_t len, size_t **lines_out)
{
    size_t cap = len / 60 + 2, n = 0, pos = 0;
    size_t *lines = malloc((cap + 1) * sizeof *lines);
    if (!lines) {
        fprintf(stderr, "writer: out of memory\n");
        exit(1);
    }
    while (pos < len) {
        size_t want = 60 + next() % 41; /* characters before '\n' */
        if (want + 1 > len - pos)
            want = len - pos - 1;
        lines[n++] = pos;
        for (size_t i = 0; i < want; i += 8) { /* 8 characters from each 64-bit draw */
            uint64_t r = next();
            for (size_t j = i; j < want && j < i + 8; j++, r >>= 8)
                buf[pos++] = (char)(' ' + (((r & 0xff) * 95) >> 8)); /* 0x20..0x7e */
        }
        buf[pos++] = '\n';
    }
    lines[n] = len;
    *lines_out = lines;
    return n;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

static int create(void)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open");
    return fd;
}

static void close_or_die(int fd)
{
    if (close(fd) != 0)
        die("close");
}

static void fsync_or_die(int fd)
{
    if (fsync(fd) != 0)
        die("fsync");
}

static void usage(void)
{
    fprintf(stderr, "usage: writer METHOD PATH MIB\n"
                    "methods: big-fsync big chunks-fsync buffered per-line append\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        usage();
    const char *method = argv[1];
    path = argv[2];
    char *end;
    errno = 0;
    unsigned long mib = strtoul(argv[3], &end, 10);
    if (errno || *end || end == argv[3] || mib == 0 || mib > 4096) {
        fprintf(stderr, "writer: MIB must be a whole number from 1 to 4096, not '%s'\n", argv[3]);
        exit(2);
    }
    size_t len = mib * MiB;
    char *buf = malloc(len);
    if (!buf) {
        fprintf(stderr, "writer: cannot allocate %lu MiB\n", mib);
        exit(1);
    }
    size_t *lines;
    size_t nlines = generate(buf, len, &lines);

    if (strcmp(method, "big-fsync") == 0 || strcmp(method, "big") == 0) {
        int fd = create();
        write_all(fd, buf, len);
        if (strcmp(method, "big-fsync") == 0)
            fsync_or_die(fd);
        close_or_die(fd);
    } else if (strcmp(method, "chunks-fsync") == 0) {
        int fd = create();
        for (size_t off = 0; off < len; off += CHUNK) {
            size_t n = len - off < CHUNK ? len - off : CHUNK;
            write_all(fd, buf + off, n);
            fsync_or_die(fd);
        }
        close_or_die(fd);
    } else if (strcmp(method, "buffered") == 0) {
        int fd = create();
        FILE *f = fdopen(fd, "w");
        if (!f)
            die("fdopen");
        /* glibc ignores the size when the buffer is NULL (it sizes the buffer by
         * st_blksize), so pass a buffer of our own. */
        static char stdio_buf[STDIO_BUF];
        if (setvbuf(f, stdio_buf, _IOFBF, sizeof stdio_buf) != 0)
            die("setvbuf");
        for (size_t i = 0; i < nlines; i++) {
            size_t n = lines[i + 1] - lines[i];
            if (fwrite(buf + lines[i], 1, n, f) != n)
                die("fwrite");
        }
        if (fclose(f) != 0)
            die("fclose");
    } else if (strcmp(method, "per-line") == 0) {
        int fd = create();
        for (size_t i = 0; i < nlines; i++)
            write_all(fd, buf + lines[i], lines[i + 1] - lines[i]);
        close_or_die(fd);
    } else if (strcmp(method, "append") == 0) {
        for (size_t off = 0; off < len; off += PIECE) {
            size_t n = len - off < PIECE ? len - off : PIECE;
            int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0)
                die("open");
            write_all(fd, buf + off, n);
            close_or_die(fd);
        }
    } else {
        fprintf(stderr, "writer: unknown method '%s'\n", method);
        usage();
    }
    free(lines);
    free(buf);
    return 0;
}
