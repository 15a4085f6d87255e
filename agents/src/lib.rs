//! Agents: the agent spec (role, goal, backstory, temperature, model), the LLM-provider
//! trait and its implementations, prompt assembly, the tool-calling loop and budgets.
