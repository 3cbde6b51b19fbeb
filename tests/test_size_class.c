/* SPDX-License-Identifier: MIT */
/*
 * test_size_class.c: the size-class table (src/size_class.c) and
 * tpi_class_of.
 *
 * Usage: test_size_class [GENERATOR TABLE_FILE]
 * With the two arguments it also runs the generator (tools/gen_size_classes.c,
 * built by ctest) and checks that its output equals the checked-in table.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <stdlib.h>

static void test_classes(void)
{
    uint32_t prev = 0;
    for (unsigned c = 0; c < TPI_CLASS_COUNT; c++) {
        const tpi_class_info *info = &tpi_classes[c];
        uint32_t b = info->block_size;
        CHECK_EQ(b % 16, 0);
        CHECK_LT(prev, b);
        CHECK_GE(info->slices, 1);
        CHECK_LE(info->slices, 32);
        /* a page of `slices` holds exactly `blocks` blocks */
        CHECK_EQ(info->blocks, (size_t)info->slices * TPI_SLICE_SIZE / b);
        CHECK_GE(info->blocks, 1);
        /* one slice for blocks up to 8 KiB, as the generator says */
        if (b <= 8192) CHECK_EQ(info->slices, 1);
        prev = b;
    }
    CHECK_EQ(tpi_classes[0].block_size, 16);
    CHECK_EQ(tpi_classes[TPI_CLASS_COUNT - 1].block_size, TPI_LARGE_MAX);
    /* aligned allocation relies on a power-of-two class at every doubling */
    for (size_t a = 16; a <= TPI_LARGE_MAX; a *= 2) {
        unsigned c = tpi_class_of(a);
        CHECK_EQ(tpi_classes[c].block_size, a);
    }
}

/* tpi_class_of(s) is the smallest class holding s, for every s. */
static void test_class_of(void)
{
    unsigned bad = 0;
    unsigned expect = 0;
    for (size_t s = 1; s <= TPI_LARGE_MAX; s++) {
        while (tpi_classes[expect].block_size < s) expect++;
        unsigned got = tpi_class_of(s);
        if (got != expect && bad++ < 10) CHECK_EQ(got, expect);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(tpi_class_of(0), 0); /* malloc(0) is served as 16 */
    for (unsigned slot = 0; slot < TPI_SMALL_SLOTS; slot++)
        CHECK_EQ(tpi_small_class[slot], tpi_class_of(slot ? slot * 16 : 1));
}

/* Requests of 64 B .. 1 MiB waste at most 20% of their block; prints the
 * table with each class's worst case. */
static void test_waste(void)
{
    printf("class  block  slices blocks  requests           worst waste\n");
    uint32_t prev = 0;
    double worst_all = 0;
    for (unsigned c = 0; c < TPI_CLASS_COUNT; c++) {
        const tpi_class_info *info = &tpi_classes[c];
        uint32_t b = info->block_size;
        uint32_t lo = prev + 1; /* the worst request of the class */
        double waste = 100.0 * (double)(b - lo) / (double)b;
        printf("%5u %7u %6u %6u  %7u..%7u  %6.2f%%\n", c, b, info->slices, info->blocks, lo, b, waste);
        if (b >= 64) {
            uint32_t from = lo < 64 ? 64 : lo;
            /* every request from `from` to b, not only the worst one */
            for (uint32_t s = from; s <= b; s += (b - from) / 64 + 1)
                if (!CHECK_LE((b - s) * 5, b)) break;
            CHECK_LE((uint64_t)(b - from) * 5, b);
            if (lo >= 64 && waste > worst_all) worst_all = waste;
        }
        prev = b;
    }
    printf("worst waste for requests of 64 B .. 1 MiB: %.2f%%\n", worst_all);
    CHECK(worst_all <= 20.0);
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

/* The checked-in table is what the generator prints. */
static void test_generated_table(const char *generator, const char *table)
{
    FILE *gen = popen(generator, "r");
    FILE *file = fopen(table, "r");
    if (!CHECK(gen != NULL) || !CHECK(file != NULL)) return;
    size_t gen_len, file_len;
    char *out = read_all(gen, &gen_len);
    char *in = read_all(file, &file_len);
    CHECK_EQ(pclose(gen), 0);
    fclose(file);
    if (CHECK(out && in)) {
        CHECK_NE(gen_len, 0);
        CHECK_EQ(gen_len, file_len);
        size_t n = gen_len < file_len ? gen_len : file_len, i = 0, line = 1;
        while (i < n && out[i] == in[i]) line += out[i++] == '\n';
        if (!CHECK_EQ(i, gen_len > file_len ? gen_len : file_len))
            fprintf(stderr, "%s differs from the output of %s at line %zu: run `make size-classes`\n", table,
                    generator, line);
    }
    free(out);
    free(in);
}

int main(int argc, char **argv)
{
    test_classes();
    test_class_of();
    test_waste();
    if (argc == 3)
        test_generated_table(argv[1], argv[2]);
    else
        printf("no generator given: table file not compared\n");
    return test_report();
}
