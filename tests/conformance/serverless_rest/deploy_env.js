// Values serverless.yml takes from the environment the deploy runs in.

// HARNESS_STACK_TAGS="k=v k2=v2" -> {k: "v", k2: "v2"} (provider.stackTags).
module.exports.stackTags = () =>
  Object.fromEntries(
    (process.env.HARNESS_STACK_TAGS || "")
      .split(/\s+/)
      .filter((word) => word.includes("="))
      .map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]),
  );

// The stages serverless-localstack acts for: the deployed stage when an
// emulator endpoint is set, none on AWS.
module.exports.emulatorStages = ({ options }) =>
  process.env.AWS_ENDPOINT_URL ? [options.stage || "dev"] : [];
