import type { ConformanceCase } from "../types.js";

export const title = "Intl";
export default [
  { name: "intl: NumberFormat en-US currency", code: `console.log(new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(1234.5));` },
  { name: "intl: NumberFormat de-DE", code: `console.log(new Intl.NumberFormat("de-DE").format(1234567.891));` },
  { name: "intl: DateTimeFormat UTC", code: `console.log(new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", dateStyle: "full", timeStyle: "long" }).format(new Date(0)));` },
  { name: "intl: toLocaleString", code: `console.log((1234.5).toLocaleString("en-US"), new Date(0).toLocaleDateString("en-US", { timeZone: "UTC" }));` },
  { name: "intl: PluralRules and RelativeTimeFormat", code: `console.log(new Intl.PluralRules("en").select(1), new Intl.PluralRules("en", { type: "ordinal" }).select(2), new Intl.RelativeTimeFormat("en").format(-1, "day"));` },
  { name: "intl: Collator sort", code: `console.log(["ä", "a", "z"].sort(new Intl.Collator("de").compare), ["b", "A", "a"].sort(Intl.Collator("en", { caseFirst: "upper" }).compare));` },
  { name: "intl: ListFormat and Segmenter", code: `console.log(new Intl.ListFormat("en", { type: "conjunction" }).format(["a", "b", "c"]), [...new Intl.Segmenter("en", { granularity: "word" }).segment("hi there")].filter((s) => s.isWordLike).length);` },
  { name: "intl: resolvedOptions timeZone", code: `console.log(Intl.DateTimeFormat().resolvedOptions().timeZone);`, env: { TZ: "UTC" } },
  { name: "intl: Date toString in UTC", code: `console.log(new Date(0).toISOString(), new Date(Date.UTC(2020, 0, 2)).getUTCDay());` },
  { name: "intl: localeCompare and toUpperCase tr", code: `console.log("a".localeCompare("b"), "i".toLocaleUpperCase("tr"));` },
  { name: "intl: DisplayNames", code: `console.log(new Intl.DisplayNames(["en"], { type: "region" }).of("FR"), new Intl.DisplayNames(["en"], { type: "language" }).of("de"));` },
  { name: "intl: supportedValuesOf", code: `console.log(Intl.supportedValuesOf("currency").includes("EUR"));` },
] satisfies ConformanceCase[];
