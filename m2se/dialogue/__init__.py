"""Conversation-level ERC the InstructERC way: label sets, prompts and retrieved demonstrations."""
