/* SPDX-License-Identifier: MIT */
/*
 * replay.c: a main for a fuzz harness without libFuzzer. Runs
 * LLVMFuzzerTestOneInput once on each file named, and on each file of each
 * folder named (in name order), so that any compiler and any sanitizer
 * build replays the checked-in seeds and crash reproducers:
 *
 *     fuzz_api_replay tests/fuzz/seeds/api [crash-...]
 *
 * Prints the number of inputs run; a failed check aborts in the harness.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *data = malloc(cap);
    while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len < cap) continue;
        uint8_t *more = realloc(data, cap *= 2);
        if (!more) free(data);
        data = more;
    }
    fclose(f);
    if (!data) return -1;
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int regular_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    int inputs = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += run_file(argv[i]) != 0;
            inputs++;
            continue;
        }
        struct dirent **entries;
        int count = scandir(argv[i], &entries, regular_entry, by_name);
        for (int j = 0; j < count; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], entries[j]->d_name);
            errors += run_file(path) != 0;
            inputs++;
            free(entries[j]);
        }
        if (count >= 0) free(entries);
    }
    printf("%d inputs run, %d unreadable\n", inputs, errors);
    return errors || inputs == 0;
}
