import { describe, expect, test } from "bun:test";
import { duration, formatDuration, parseDuration, parseSize, size } from "./units.ts";

describe("parseDuration", () => {
  test.each([
    ["500ms", 500],
    ["10s", 10_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["1.5s", 1_500],
    ["0s", 0],
    [" 10s ", 10_000],
    ["10 s", 10_000],
    ["10S", 10_000],
    ["250MS", 250],
  ])("%p is %p ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "10", "10 seconds", "soon", "-1s", "1e3s", "s", "1w", "10sec", "1.s", "5m30s"])(
    "%p is not a duration",
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe("parseSize", () => {
  test.each([
    ["100b", 100],
    ["64kb", 65_536],
    ["512kb", 524_288],
    ["1mb", 1_048_576],
    ["10mb", 10_485_760],
    ["1gb", 1_073_741_824],
    ["1.5kb", 1_536],
    ["1MB", 1_048_576],
    [" 2 kb ", 2_048],
  ])("%p is %p bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(["", "1024", "1 megabyte", "big", "-1mb", "1tb", "kb", "1k", "1m"])("%p is not a size", (text) => {
    expect(parseSize(text)).toBeUndefined();
  });
});

describe("formatDuration", () => {
  test.each([
    [500, "500ms"],
    [1_500, "1500ms"],
    [10_000, "10s"],
    [90_000, "90s"],
    [300_000, "5m"],
    [3_600_000, "1h"],
    [5_400_000, "90m"],
    [0, "0ms"],
  ])("%p ms is %p", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test("reads back as the same duration", () => {
    for (const ms of [1, 999, 1_000, 61_000, 120_000, 86_400_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe("duration and size schemas", () => {
  test("turn config strings into numbers", () => {
    expect(duration.parse("10s")).toBe(10_000);
    expect(size.parse("1mb")).toBe(1_048_576);
  });

  test("say what is wrong and echo the value", () => {
    expect(duration.safeParse("soon").error?.issues[0]?.message).toBe(
      'must be a duration such as 500ms, 10s or 5m (got "soon")',
    );
    expect(size.safeParse("huge").error?.issues[0]?.message).toBe('must be a size such as 512kb or 1mb (got "huge")');
  });

  test("a bare number is refused with a hint about the unit", () => {
    expect(duration.safeParse(10).error?.issues[0]?.message).toBe(
      "must be a duration such as 500ms, 10s or 5m, with its unit (got 10)",
    );
    expect(size.safeParse(1024).error?.issues[0]?.message).toBe(
      "must be a size such as 512kb or 1mb, with its unit (got 1024)",
    );
  });

  test("a size of zero is refused", () => {
    expect(size.safeParse("0kb").success).toBe(false);
  });
});
