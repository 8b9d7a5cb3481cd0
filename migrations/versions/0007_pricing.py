"""pricing: tax classes and rates, shipping zones and methods, promotions, vouchers and their uses

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Orders keep what was priced: per line discount, tax and rate; per order the discount
total, the shipping method, the voucher code, whether prices included tax, and the
pickup store of a click & collect order. Existing orders were priced net with no
discount, so the new columns start at 0 / false and their totals still add up.
"""
import sqlalchemy as sa
from alembic import op

OLD_TOTAL = "abs(total - (subtotal + tax + shipping_cost)) < 0.005"
NEW_TOTAL = ("abs(total - (subtotal - discount_total + shipping_cost"
             " + CASE WHEN prices_include_tax THEN 0 ELSE tax END)) < 0.005")

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('promotions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('category_ids', sa.JSON(), nullable=False),
    sa.Column('product_ids', sa.JSON(), nullable=False),
    sa.Column('min_subtotal', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('usage_limit', sa.Integer(), nullable=True),
    sa.Column('per_customer_limit', sa.Integer(), nullable=True),
    sa.Column('times_used', sa.Integer(), server_default='0', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'percent' OR value <= 100", name=op.f('ck_promotions_percent_at_most_100')),
    sa.CheckConstraint("kind IN ('percent', 'fixed', 'free_shipping')", name=op.f('ck_promotions_kind_valid')),
    sa.CheckConstraint("scope IN ('all', 'categories', 'products')", name=op.f('ck_promotions_scope_valid')),
    sa.CheckConstraint('code IS NULL OR code = upper(code)', name=op.f('ck_promotions_code_upper_case')),
    sa.CheckConstraint('ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at', name=op.f('ck_promotions_window_ordered')),
    sa.CheckConstraint('min_subtotal IS NULL OR min_subtotal >= 0', name=op.f('ck_promotions_min_subtotal_not_negative')),
    sa.CheckConstraint('per_customer_limit IS NULL OR per_customer_limit >= 1', name=op.f('ck_promotions_per_customer_limit_positive')),
    sa.CheckConstraint('times_used >= 0', name=op.f('ck_promotions_times_used_not_negative')),
    sa.CheckConstraint('usage_limit IS NULL OR times_used <= usage_limit', name=op.f('ck_promotions_within_usage_limit')),
    sa.CheckConstraint('usage_limit IS NULL OR usage_limit >= 0', name=op.f('ck_promotions_usage_limit_not_negative')),
    sa.CheckConstraint('value >= 0', name=op.f('ck_promotions_value_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promotions')),
    sa.UniqueConstraint('code', name=op.f('uq_promotions_code'))
    )
    op.create_table('shipping_zones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('tax_shipping', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_zones')),
    sa.UniqueConstraint('name', name=op.f('uq_shipping_zones_name'))
    )
    op.create_table('tax_classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_classes')),
    sa.UniqueConstraint('code', name=op.f('uq_tax_classes_code'))
    )
    op.create_table('shipping_methods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('zone_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('free_over', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('weight_brackets', sa.JSON(), nullable=False),
    sa.Column('min_days', sa.Integer(), nullable=True),
    sa.Column('max_days', sa.Integer(), nullable=True),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'pickup' OR (store_id IS NOT NULL AND price = 0)", name=op.f('ck_shipping_methods_pickup_at_a_store')),
    sa.CheckConstraint("kind = 'pickup' OR zone_id IS NOT NULL", name=op.f('ck_shipping_methods_shipping_in_a_zone')),
    sa.CheckConstraint("kind IN ('flat', 'weight', 'pickup')", name=op.f('ck_shipping_methods_kind_valid')),
    sa.CheckConstraint('free_over IS NULL OR free_over >= 0', name=op.f('ck_shipping_methods_free_over_not_negative')),
    sa.CheckConstraint('max_days IS NULL OR min_days IS NULL OR max_days >= min_days', name=op.f('ck_shipping_methods_days_ordered')),
    sa.CheckConstraint('min_days IS NULL OR min_days >= 0', name=op.f('ck_shipping_methods_min_days_not_negative')),
    sa.CheckConstraint('price >= 0', name=op.f('ck_shipping_methods_price_not_negative')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_shipping_methods_store_id_stores'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['zone_id'], ['shipping_zones.id'], name=op.f('fk_shipping_methods_zone_id_shipping_zones'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_methods')),
    sa.UniqueConstraint('code', name=op.f('uq_shipping_methods_code'))
    )
    with op.batch_alter_table('shipping_methods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shipping_methods_store_id'), ['store_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shipping_methods_zone_id'), ['zone_id'], unique=False)

    op.create_table('tax_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=True),
    sa.Column('tax_class_id', sa.Integer(), nullable=False),
    sa.Column('rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.CheckConstraint('length(country) = 2', name=op.f('ck_tax_rates_country_alpha2')),
    sa.CheckConstraint('rate >= 0 AND rate < 1', name=op.f('ck_tax_rates_rate_range')),
    sa.ForeignKeyConstraint(['tax_class_id'], ['tax_classes.id'], name=op.f('fk_tax_rates_tax_class_id_tax_classes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    sa.UniqueConstraint('country', 'region', 'tax_class_id', name='uq_tax_rates_destination_class')
    )
    with op.batch_alter_table('tax_rates', schema=None) as batch_op:
        batch_op.create_index('ix_tax_rates_country', ['country'], unique=False)

    op.create_table('voucher_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('promotion_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('usage_limit', sa.Integer(), nullable=True),
    sa.Column('times_used', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('code = upper(code)', name=op.f('ck_voucher_codes_code_upper_case')),
    sa.CheckConstraint('times_used >= 0', name=op.f('ck_voucher_codes_times_used_not_negative')),
    sa.CheckConstraint('usage_limit IS NULL OR times_used <= usage_limit', name=op.f('ck_voucher_codes_within_usage_limit')),
    sa.CheckConstraint('usage_limit IS NULL OR usage_limit >= 1', name=op.f('ck_voucher_codes_usage_limit_positive')),
    sa.ForeignKeyConstraint(['promotion_id'], ['promotions.id'], name=op.f('fk_voucher_codes_promotion_id_promotions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_voucher_codes_code'))
    )
    with op.batch_alter_table('voucher_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_codes_promotion_id'), ['promotion_id'], unique=False)

    op.create_table('promotion_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('promotion_id', sa.Integer(), nullable=False),
    sa.Column('voucher_code_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('discount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('discount >= 0', name=op.f('ck_promotion_uses_discount_not_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_promotion_uses_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['promotion_id'], ['promotions.id'], name=op.f('fk_promotion_uses_promotion_id_promotions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_promotion_uses_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['voucher_code_id'], ['voucher_codes.id'], name=op.f('fk_promotion_uses_voucher_code_id_voucher_codes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_uses')),
    sa.UniqueConstraint('order_id', 'promotion_id', name='uq_promotion_uses_order_promotion')
    )
    with op.batch_alter_table('promotion_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promotion_uses_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_promotion_uses_promotion_email', ['promotion_id', 'email'], unique=False)
        batch_op.create_index('ix_promotion_uses_promotion_user', ['promotion_id', 'user_id'], unique=False)

    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount', sa.Numeric(precision=12, scale=2), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('tax', sa.Numeric(precision=12, scale=2), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('tax_rate', sa.Numeric(precision=7, scale=4), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_order_items_discount_within_line'),
                                         'discount >= 0 AND discount <= line_total')
        batch_op.create_check_constraint(op.f('ck_order_items_tax_not_negative'), 'tax >= 0')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_total', sa.Numeric(precision=12, scale=2), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('shipping_tax', sa.Numeric(precision=12, scale=2), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('prices_include_tax', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('shipping_method_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('shipping_method_name', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('voucher_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pickup_store_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_pickup_store_id'), ['pickup_store_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_pickup_store_id_stores'), 'stores', ['pickup_store_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(op.f('ck_orders_total_adds_up'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_total_adds_up'), NEW_TOTAL)
        batch_op.create_check_constraint(op.f('ck_orders_discount_within_subtotal'),
                                         'discount_total >= 0 AND discount_total <= subtotal')
        batch_op.create_check_constraint(op.f('ck_orders_shipping_tax_within_tax'),
                                         'shipping_tax >= 0 AND shipping_tax <= tax')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_class_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_products_tax_class_id_tax_classes'), 'tax_classes', ['tax_class_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compare_at_price', sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.create_check_constraint(op.f('ck_variants_compare_at_not_negative'),
                                         'compare_at_price IS NULL OR compare_at_price >= 0')



def downgrade():
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_variants_compare_at_not_negative'), type_='check')
        batch_op.drop_column('compare_at_price')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_products_tax_class_id_tax_classes'), type_='foreignkey')
        batch_op.drop_column('tax_class_id')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_shipping_tax_within_tax'), type_='check')
        batch_op.drop_constraint(op.f('ck_orders_discount_within_subtotal'), type_='check')
        batch_op.drop_constraint(op.f('ck_orders_total_adds_up'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_total_adds_up'), OLD_TOTAL)
        batch_op.drop_constraint(batch_op.f('fk_orders_pickup_store_id_stores'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_pickup_store_id'))
        batch_op.drop_column('pickup_store_id')
        batch_op.drop_column('voucher_code')
        batch_op.drop_column('shipping_method_name')
        batch_op.drop_column('shipping_method_code')
        batch_op.drop_column('prices_include_tax')
        batch_op.drop_column('shipping_tax')
        batch_op.drop_column('discount_total')

    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_order_items_tax_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_order_items_discount_within_line'), type_='check')
        batch_op.drop_column('tax_rate')
        batch_op.drop_column('tax')
        batch_op.drop_column('discount')

    with op.batch_alter_table('promotion_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_promotion_uses_promotion_user')
        batch_op.drop_index('ix_promotion_uses_promotion_email')
        batch_op.drop_index(batch_op.f('ix_promotion_uses_order_id'))

    op.drop_table('promotion_uses')
    with op.batch_alter_table('voucher_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_codes_promotion_id'))

    op.drop_table('voucher_codes')
    with op.batch_alter_table('tax_rates', schema=None) as batch_op:
        batch_op.drop_index('ix_tax_rates_country')

    op.drop_table('tax_rates')
    with op.batch_alter_table('shipping_methods', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shipping_methods_zone_id'))
        batch_op.drop_index(batch_op.f('ix_shipping_methods_store_id'))

    op.drop_table('shipping_methods')
    op.drop_table('tax_classes')
    op.drop_table('shipping_zones')
    op.drop_table('promotions')
