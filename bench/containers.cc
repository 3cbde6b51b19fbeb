/* SPDX-License-Identifier: MIT */
/*
 * containers.cc: C++ container churn through operator new and delete.
 *
 *   containers map|umap|string N ROUNDS
 *
 * map     a std::map<std::string, std::string> of about N entries; every
 *         round inserts N/2 random keys (some present already) and erases
 *         N/2 random keys, then looks every key of a sample up. Keys and
 *         values are 8 to 64 characters, so most are longer than the
 *         15-character buffer inside std::string and take a block each.
 * umap    a std::unordered_map<uint64_t, std::vector<uint32_t>> churned the
 *         same way (values of 1 to 32 elements); the table rehashes as it
 *         grows.
 * string  every round builds N strings by concatenation, sorts them, splits
 *         each into words and joins the words again.
 *
 * The C++ operators allocate through malloc, or are replaced by the
 * preloaded allocator (libtierpool-malloc replaces both). Prints "check ..."
 * with a checksum of the contents (the same for every allocator unless one
 * is wrong).
 */
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Rng {
    uint64_t s;
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// A string of 8 to 64 characters that depends only on k.
std::string text_for(uint64_t k)
{
    Rng r{k * 0x9e3779b97f4a7c15ULL + 1};
    std::string s(8 + r.below(57), ' ');
    for (char &c : s) c = static_cast<char>('a' + r.below(26));
    return s;
}

uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3ULL;
}

uint64_t run_map(size_t n, long rounds)
{
    Rng r{42};
    std::map<std::string, std::string> m;
    uint64_t h = 0;
    for (long round = 0; round < rounds; round++) {
        for (size_t i = 0; i < n / 2; i++) {
            uint64_t k = r.below(2 * n);
            m[text_for(k)] = text_for(k + 7);
        }
        for (size_t i = 0; i < n / 2; i++) m.erase(text_for(r.below(2 * n)));
        for (size_t i = 0; i < n / 4; i++) {
            auto it = m.find(text_for(r.below(2 * n)));
            h = mix(h, it == m.end() ? 0 : it->second.size());
        }
        h = mix(h, m.size());
    }
    for (const auto &kv : m) h = mix(h, kv.first.size() * 131 + static_cast<unsigned char>(kv.second[0]));
    return h;
}

uint64_t run_umap(size_t n, long rounds)
{
    Rng r{43};
    std::unordered_map<uint64_t, std::vector<uint32_t>> m;
    uint64_t h = 0;
    for (long round = 0; round < rounds; round++) {
        for (size_t i = 0; i < n / 2; i++) {
            uint64_t k = r.below(2 * n);
            std::vector<uint32_t> v(1 + r.below(32));
            for (size_t j = 0; j < v.size(); j++) v[j] = static_cast<uint32_t>(k + j);
            m[k] = std::move(v);
        }
        for (size_t i = 0; i < n / 2; i++) m.erase(r.below(2 * n));
        for (size_t i = 0; i < n / 4; i++) {
            auto it = m.find(r.below(2 * n));
            h = mix(h, it == m.end() ? 0 : it->second.size() + it->second.back());
        }
        h = mix(h, m.size());
    }
    return h;
}

uint64_t run_string(size_t n, long rounds)
{
    uint64_t h = 0;
    for (long round = 0; round < rounds; round++) {
        std::vector<std::string> lines;
        for (size_t i = 0; i < n; i++) {
            std::string line;
            size_t words = 1 + (i * 7 + static_cast<size_t>(round)) % 9;
            for (size_t w = 0; w < words; w++) {
                if (w) line += ' ';
                line += text_for(i * 16 + w + static_cast<size_t>(round)).substr(0, 3 + (i + w) % 12);
            }
            lines.push_back(std::move(line));
        }
        std::sort(lines.begin(), lines.end());
        std::string joined;
        for (const std::string &line : lines) {
            std::vector<std::string> words;
            size_t start = 0;
            for (size_t end; (end = line.find(' ', start)) != std::string::npos; start = end + 1)
                words.push_back(line.substr(start, end - start));
            words.push_back(line.substr(start));
            std::reverse(words.begin(), words.end());
            std::string back;
            for (const std::string &w : words) back += w + "-";
            h = mix(h, back.size() * 257 + static_cast<unsigned char>(back[0]));
            if (joined.size() < (1u << 16)) joined += back;
        }
        h = mix(h, joined.size());
    }
    return h;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s map|umap|string N ROUNDS\n", argv[0]);
        return 2;
    }
    size_t n = std::strtoul(argv[2], nullptr, 10);
    long rounds = std::atol(argv[3]);
    if (n < 4 || rounds < 1) {
        std::fprintf(stderr, "containers: bad arguments\n");
        return 2;
    }
    uint64_t h;
    if (!std::strcmp(argv[1], "map"))
        h = run_map(n, rounds);
    else if (!std::strcmp(argv[1], "umap"))
        h = run_umap(n, rounds);
    else if (!std::strcmp(argv[1], "string"))
        h = run_string(n, rounds);
    else {
        std::fprintf(stderr, "containers: unknown workload %s\n", argv[1]);
        return 2;
    }
    std::printf("check %s n %zu rounds %ld hash %016llx\n", argv[1], n, rounds, static_cast<unsigned long long>(h));
    return 0;
}
