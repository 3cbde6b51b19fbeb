-- SPDX-License-Identifier: MIT
-- sort_strings.lua N: lua5.4's job for bench/run.py. Makes N strings out of
-- syllables picked by a fixed pseudo-random sequence, sorts them twice (as
-- they are, then by their reversal with a comparison function), counts the
-- syllables through gsub and joins a sample; prints a digest that must not
-- depend on the allocator.
local n = tonumber(arg[1]) or 1000000
local syllables = {"ka", "lo", "mi", "nu", "re", "sa", "ti", "vo", "xe", "zu", "bra", "chi", "dro", "fle"}
local seed = 7
local function pick(k)
    seed = (seed * 48271) % 2147483647
    return seed % k + 1
end
local words = {}
for i = 1, n do
    local parts = {}
    for j = 1, 2 + pick(5) do parts[j] = syllables[pick(#syllables)] end
    words[i] = table.concat(parts) .. tostring(i % 97)
end
table.sort(words)
local first, last = words[1], words[n]
local reversed = {}
for i = 1, n do reversed[i] = words[i]:reverse() end
table.sort(reversed, function(a, b) return #a < #b or (#a == #b and a < b) end)
local counts = {}
for i = 1, n, 7 do
    reversed[i]:gsub("%a%a", function(s) counts[s] = (counts[s] or 0) + 1 end)
end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
local sample = {}
for i = 1, n, n // 50 + 1 do sample[#sample + 1] = reversed[i] end
print(n, first, last, reversed[1], reversed[n], #keys, counts[keys[1]], #table.concat(sample, ","))
