"""Campaigns (营销活动): content compliance today; campaigns, benefits, content and approvals later."""
