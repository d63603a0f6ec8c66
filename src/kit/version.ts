import packageJson from "../../package.json" with { type: "json" };

/** The version printed by `--version`, logged at start and sent in User-Agent. */
export const VERSION: string = packageJson.version;
export const USER_AGENT = `actiongate/${VERSION}`;
