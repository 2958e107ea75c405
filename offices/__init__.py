"""The office staff's door: what offices do with the cases in their queue, and the
administration of which office handles what. HTTP only."""
